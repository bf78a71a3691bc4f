//! The results table and the SVG chart.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::batch::Batch;
use super::contenders::Contender;
use super::limiter::{CallCounts, OutageCounts};

/// One contender's results.
#[derive(Clone, Debug)]
pub struct Row {
    /// Contender id (as for `--only`).
    pub id: &'static str,
    /// Contender name.
    pub label: &'static str,
    /// Requests whose final answer was a 2xx, in percent.
    pub success: f64,
    /// Calls that reached the server.
    pub calls: u64,
    /// Calls answered 429/5xx, in percent of calls.
    pub wasted: f64,
    /// Latency a caller saw, retries included.
    pub mean: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// First send to last answer.
    pub makespan: Duration,
    /// `makespan ÷ (requests ÷ rate)`.
    pub vs_ideal: f64,
    /// In `outage` mode: calls while the server was down, and the time from
    /// its recovery to the first call it served.
    pub outage: Option<OutageCounts>,
}

impl Row {
    /// Summarises a batch and the server's count of its calls.
    pub fn new(contender: &Contender, batch: &Batch, calls: CallCounts, ideal: Duration) -> Row {
        let mut latencies: Vec<Duration> = batch.outcomes.iter().map(|o| o.latency).collect();
        latencies.sort_unstable();
        let succeeded = batch.outcomes.iter().filter(|o| o.ok).count();
        let total: Duration = latencies.iter().sum();
        Row {
            id: contender.id,
            label: contender.label,
            success: percent(succeeded as f64, batch.outcomes.len() as f64),
            calls: calls.sent,
            wasted: percent(calls.wasted as f64, calls.sent as f64),
            mean: total
                .checked_div(latencies.len().max(1) as u32)
                .unwrap_or_default(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            makespan: batch.makespan,
            vs_ideal: ratio(batch.makespan.as_secs_f64(), ideal.as_secs_f64()),
            outage: calls.outage,
        }
    }
}

const LABEL_WIDTH: usize = 36;

/// The table's heading; with `outage`, two more columns: calls during the
/// outage, and time from recovery to the first success.
pub fn header(outage: bool) -> String {
    let extra = if outage {
        format!(" {:>8} {:>9}", "outage", "1st ok")
    } else {
        String::new()
    };
    format!(
        "{:<LABEL_WIDTH$} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}{extra} {:>7}",
        "contender", "success", "calls", "wasted", "mean", "P50", "P99", "makespan", "÷ ideal"
    )
}

/// One line of the table (ending in `×`, which CI counts).
pub fn line(row: &Row) -> String {
    let extra = match row.outage {
        Some(o) => format!(
            " {:>8} {:>9}",
            o.calls,
            o.first_ok.map_or_else(|| "never".to_owned(), human)
        ),
        None => String::new(),
    };
    format!(
        "{:<LABEL_WIDTH$} {:>7.1}% {:>7} {:>6.1}% {:>9} {:>9} {:>9} {:>9}{extra} {:>6.2}×",
        row.label,
        row.success,
        row.calls,
        row.wasted,
        human(row.mean),
        human(row.p50),
        human(row.p99),
        human(row.makespan),
        row.vs_ideal
    )
}

/// `230 ms`, `1.15 s`, `84.2 s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{} ms", d.as_millis())
    } else if secs < 10.0 {
        format!("{secs:.2} s")
    } else {
        format!("{secs:.1} s")
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    100.0 * ratio(part, whole)
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

// ---- SVG ----------------------------------------------------------------

const ROW_HEIGHT: usize = 26;
const LABEL_COLUMN: usize = 280;
const PANEL_WIDTH: usize = 300;
const PANEL_GAP: usize = 90;
const TOP: usize = 64;

/// Writes a two-panel horizontal bar chart: wasted calls and makespan per
/// contender (with the ideal makespan marked), titled `title`.
pub fn write_svg(path: &Path, title: &str, rows: &[Row], ideal: Duration) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, svg(title, rows, ideal))
}

fn svg(title: &str, rows: &[Row], ideal: Duration) -> String {
    let width = LABEL_COLUMN + 2 * PANEL_WIDTH + PANEL_GAP + 150;
    let height = TOP + rows.len() * ROW_HEIGHT + 20;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">{}</text>
"#,
        escape(title)
    );
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + i * ROW_HEIGHT;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_COLUMN - 8,
            y + 15,
            escape(row.label)
        );
    }
    let wasted = Panel {
        heading: "wasted calls (% of calls sent)",
        bars: rows
            .iter()
            .map(|r| Bar {
                value: r.wasted,
                text: format!("{:.1}%", r.wasted),
                colour: colour(r.id),
            })
            .collect(),
        full: 100.0,
        marker: None,
    };
    wasted.draw(&mut out, LABEL_COLUMN);
    let ideal = ideal.as_secs_f64();
    let makespan = Panel {
        heading: "makespan (dashed: ideal), and success",
        bars: rows
            .iter()
            .map(|r| {
                let secs = r.makespan.as_secs_f64();
                Bar {
                    value: secs,
                    text: format!("{secs:.1} s · {:.0}% ok", r.success),
                    colour: colour(r.id),
                }
            })
            .collect(),
        full: rows
            .iter()
            .map(|r| r.makespan.as_secs_f64())
            .fold(ideal, f64::max),
        marker: Some(ideal),
    };
    makespan.draw(&mut out, LABEL_COLUMN + PANEL_WIDTH + PANEL_GAP);
    out.push_str("</svg>\n");
    out
}

/// The crate's own contenders stand out.
fn colour(id: &str) -> &'static str {
    if id.starts_with("backoff") {
        "#f58518"
    } else {
        "#4c78a8"
    }
}

struct Bar {
    value: f64,
    /// Written after the bar.
    text: String,
    colour: &'static str,
}

/// A column of horizontal bars, one per row.
struct Panel {
    heading: &'static str,
    bars: Vec<Bar>,
    /// The value that fills the panel's width.
    full: f64,
    /// A value to mark with a dashed line.
    marker: Option<f64>,
}

impl Panel {
    fn draw(&self, out: &mut String, x: usize) {
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{}" font-weight="bold">{}</text>"#,
            TOP - 14,
            escape(self.heading)
        );
        for (i, bar) in self.bars.iter().enumerate() {
            let y = TOP + i * ROW_HEIGHT;
            let w = self.width(bar.value);
            let _ = writeln!(
                out,
                r##"<rect x="{x}" y="{}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{}</text>"##,
                y + 3,
                ROW_HEIGHT - 8,
                bar.colour,
                x as f64 + w + 4.0,
                y + 15,
                escape(&bar.text)
            );
        }
        let bottom = TOP + self.bars.len() * ROW_HEIGHT;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{}" x2="{x}" y2="{bottom}" stroke="black"/>"#,
            TOP - 2
        );
        if let Some(at) = self.marker {
            let mx = x as f64 + self.width(at);
            let _ = writeln!(
                out,
                r##"<line x1="{mx:.1}" y1="{}" x2="{mx:.1}" y2="{bottom}" stroke="#e45756" stroke-dasharray="4 3"/>"##,
                TOP - 2
            );
        }
    }

    /// Bar length for `value`, in pixels.
    fn width(&self, value: f64) -> f64 {
        if self.full > 0.0 {
            (value / self.full * PANEL_WIDTH as f64).clamp(0.0, PANEL_WIDTH as f64)
        } else {
            0.0
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
