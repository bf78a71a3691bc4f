//! What the showdown and the simulation share: the flags, the token-bucket
//! server logic, the contenders, the batch driver and the report. The two
//! examples differ only in what carries a request to the bucket (hyper over
//! loopback, or a direct call on tokio's paused clock).

pub mod article;
pub mod batch;
pub mod cli;
pub mod contenders;
pub mod limiter;
// The simulation sends over no socket.
#[allow(dead_code)]
pub mod loopback;
pub mod report;
pub mod tower_reference;

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use batch::{Plan, Progress};
use cli::Config;
use contenders::{Setup, Transport};
use limiter::{Limiter, Mode};
use report::Row;

/// A transport to a fresh server, where to send, and whatever keeps that
/// server alive (dropped once the contender is done).
pub struct Target<G> {
    /// Carries requests to the server.
    pub transport: Transport,
    /// The server's address.
    pub uri: Uri,
    /// Dropping it stops the server.
    pub guard: G,
}

/// Runs every selected contender against a fresh server from `serve`, prints
/// the table row by row, then writes the chart. Returns the rows.
pub async fn run_all<G>(
    config: &Config,
    mut serve: impl FnMut(Arc<Limiter>) -> io::Result<Target<G>>,
) -> io::Result<Vec<Row>> {
    let shape = config.shape;
    let ideal = Duration::from_secs_f64(shape.requests as f64 / shape.rate);
    let setup = Setup {
        seed: config.seed,
        article_second: Duration::from_secs_f64(f64::from(shape.burst) / shape.rate),
    };
    let title = format!(
        "{}: {} requests, concurrency {}, server {}/s burst {}, mode {}, seed {}",
        config.program,
        shape.requests,
        shape.concurrency,
        shape.rate,
        shape.burst,
        config.mode,
        config.seed
    );
    say(&format!(
        "{title}; ideal makespan {}\n\"article\" rows: the client of the AI-API retry article \
         (5 attempts, max delay 60 article seconds; one article second = {} here)\n",
        report::human(ideal),
        report::human(setup.article_second)
    ))?;
    if config.mode == Mode::Outage {
        let o = config.outage();
        say(&format!(
            "(outage: the server answers 503 from {} to {}; \"outage\" = calls it saw then, \"1st ok\" = from recovery to its first 200)",
            report::human(o.start),
            report::human(o.start + o.length)
        ))?;
    }
    say(&report::header(config.mode == Mode::Outage))?;
    let mut rows = Vec::new();
    for contender in contenders::all() {
        if !config.only.is_empty() && !config.only.iter().any(|id| id == contender.id) {
            continue;
        }
        let limiter = Arc::new(Limiter::new(config.limits()));
        let target = serve(limiter.clone())?;
        let plan = Plan {
            uri: target.uri,
            requests: shape.requests,
            concurrency: shape.concurrency,
        };
        let progress = Progress::new(contender.label, shape.requests);
        let batch = batch::run(contender.wrap(target.transport, &setup), &plan, &progress).await;
        progress.clear();
        drop(target.guard);
        let row = Row::new(&contender, &batch, limiter.counts(), ideal);
        say(&report::line(&row))?;
        rows.push(row);
    }
    report::write_svg(&config.svg, &title, &rows, ideal)?;
    say(&format!("\nchart: {}", config.svg.display()))?;
    Ok(rows)
}

/// Writes a line to stdout; an error (a closed pipe, say) ends the run
/// instead of panicking as `println!` would.
pub fn say(line: &str) -> io::Result<()> {
    writeln!(io::stdout(), "{line}")
}

/// The exit code for a finished run: quiet success when stdout was closed
/// early (`| head`), the error on stderr otherwise.
pub fn exit_code(result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
