//! Command-line flags shared by the showdown and the simulation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::contenders;
use super::limiter::{Limits, Mode, Outage};

/// A batch size, width and server limit.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Requests per contender.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Server's sustained rate, per second.
    pub rate: f64,
    /// Server's burst.
    pub burst: u32,
}

/// An example's defaults: a full run and a `--quick` one.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// `cargo run --example <program>`.
    pub program: &'static str,
    /// Without `--quick`.
    pub full: Shape,
    /// With `--quick`.
    pub quick: Shape,
    /// Where the chart goes.
    pub svg: &'static str,
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The example's name.
    pub program: &'static str,
    /// Batch and server shape.
    pub shape: Shape,
    /// How the server announces 429s.
    pub mode: Mode,
    /// Seed for every random draw.
    pub seed: u64,
    /// Where the chart goes.
    pub svg: PathBuf,
    /// Contender ids to run; all when empty.
    pub only: Vec<String>,
}

impl Config {
    /// The server's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            rate: self.shape.rate,
            burst: self.shape.burst,
            mode: self.mode,
            outage: (self.mode == Mode::Outage).then(|| self.outage()),
        }
    }

    /// In `outage` mode, the server is down from 15 % of the ideal makespan
    /// (requests ÷ rate) for 45 % of it, and for at least a second: 1 s to
    /// 4 s into the default run.
    pub fn outage(&self) -> Outage {
        let ideal = self.shape.requests as f64 / self.shape.rate;
        Outage {
            start: Duration::from_secs_f64(0.15 * ideal),
            length: Duration::from_secs_f64(0.45 * ideal).max(Duration::from_secs(1)),
        }
    }
}

/// Parses the process's flags; on `--help` or a bad flag, prints usage and
/// returns the exit code to leave with.
pub fn from_env(defaults: &Defaults) -> Result<Config, ExitCode> {
    match parse(std::env::args().skip(1), defaults) {
        Ok(Some(config)) => Ok(config),
        Ok(None) => Err(super::exit_code(super::say(&usage(defaults)))),
        Err(message) => {
            eprintln!("error: {message}\n\n{}", usage(defaults));
            Err(ExitCode::from(2))
        }
    }
}

/// The usage text.
pub fn usage(d: &Defaults) -> String {
    let (f, q) = (d.full, d.quick);
    format!(
        "usage: cargo run --release --example {program} -- [flags]

  --requests N      requests per contender            (default {}, quick {})
  --concurrency N   requests in flight at once        (default {}, quick {})
  --rate R          server's sustained rate, per s    (default {}, quick {})
  --burst B         server's token-bucket size        (default {}, quick {})
  --mode M          {modes}   (default ratelimit)
  --seed S          seed for every random draw        (default 1)
  --svg PATH        where to write the chart          (default {svg})
  --only IDS        comma-separated contenders: {ids}
  --preset P        named settings: {presets}
  --quick           a tiny run (a smoke test)
  --help            this text",
        f.requests,
        q.requests,
        f.concurrency,
        q.concurrency,
        f.rate,
        q.rate,
        f.burst,
        q.burst,
        program = d.program,
        modes = Mode::NAMES,
        svg = d.svg,
        ids = contenders::ids(),
        presets = preset_names(),
    )
}

/// Named settings: a mode and a server shape (flags given too still win).
/// The two `retry-after-*` presets are the settings the gate is judged by
/// on servers that state nothing but `Retry-After`.
const PRESETS: &[(&str, Mode, Shape)] = &[
    (
        "retry-after-100",
        Mode::RetryAfter,
        Shape {
            requests: 1_000,
            concurrency: 50,
            rate: 100.0,
            burst: 10,
        },
    ),
    (
        "retry-after-50",
        Mode::RetryAfter,
        Shape {
            requests: 1_000,
            concurrency: 100,
            rate: 50.0,
            burst: 5,
        },
    ),
];

fn preset_names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

const MAX_REQUESTS: u32 = 10_000_000;
const MAX_CONCURRENCY: u32 = 10_000;
const MAX_BURST: u32 = 10_000_000;

/// Flags as given, before defaults fill the gaps.
#[derive(Default)]
struct Given {
    requests: Option<usize>,
    concurrency: Option<usize>,
    rate: Option<f64>,
    burst: Option<u32>,
    quick: bool,
}

/// `Ok(None)` asks for the usage text.
fn parse(
    args: impl Iterator<Item = String>,
    defaults: &Defaults,
) -> Result<Option<Config>, String> {
    let mut given = Given::default();
    let mut mode = Mode::RateLimit;
    let mut seed = 1;
    let mut svg = PathBuf::from(defaults.svg);
    let mut only = Vec::new();
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--quick" => given.quick = true,
            "--requests" => given.requests = Some(count(&flag, &value()?, MAX_REQUESTS)?),
            "--concurrency" => given.concurrency = Some(count(&flag, &value()?, MAX_CONCURRENCY)?),
            "--rate" => given.rate = Some(rate(&value()?)?),
            "--burst" => given.burst = Some(count(&flag, &value()?, MAX_BURST)?),
            "--mode" => {
                let v = value()?;
                mode = Mode::parse(&v)
                    .ok_or_else(|| format!("--mode {v}: expected {}", Mode::NAMES))?;
            }
            "--seed" => seed = number(&flag, &value()?)?,
            "--svg" => svg = PathBuf::from(value()?),
            "--only" => only = contender_ids(&value()?)?,
            "--preset" => {
                let v = value()?;
                let p = PRESETS
                    .iter()
                    .find(|p| p.0 == v)
                    .ok_or_else(|| format!("--preset {v}: expected one of {}", preset_names()))?;
                mode = p.1;
                given.requests = given.requests.or(Some(p.2.requests));
                given.concurrency = given.concurrency.or(Some(p.2.concurrency));
                given.rate = given.rate.or(Some(p.2.rate));
                given.burst = given.burst.or(Some(p.2.burst));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let base = if given.quick {
        defaults.quick
    } else {
        defaults.full
    };
    let shape = Shape {
        requests: given.requests.unwrap_or(base.requests),
        concurrency: given.concurrency.unwrap_or(base.concurrency),
        rate: given.rate.unwrap_or(base.rate),
        burst: given.burst.unwrap_or(base.burst),
    };
    Ok(Some(Config {
        program: defaults.program,
        shape,
        mode,
        seed,
        svg,
        only,
    }))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} {value}: not a number"))
}

fn count<T: TryFrom<u32>>(flag: &str, value: &str, max: u32) -> Result<T, String> {
    let n: u32 = number(flag, value)?;
    if (1..=max).contains(&n) {
        T::try_from(n).map_err(|_| format!("{flag} {value}: too large"))
    } else {
        Err(format!("{flag} {value}: expected 1 to {max}"))
    }
}

fn rate(value: &str) -> Result<f64, String> {
    let r: f64 = number("--rate", value)?;
    if r.is_finite() && (0.001..=1e6).contains(&r) {
        Ok(r)
    } else {
        Err(format!(
            "--rate {value}: expected a number of calls per second, 0.001 to 1000000"
        ))
    }
}

fn contender_ids(value: &str) -> Result<Vec<String>, String> {
    let known = contenders::all();
    value
        .split(',')
        .map(|id| {
            let id = id.trim();
            if known.iter().any(|c| c.id == id) {
                Ok(id.to_owned())
            } else {
                Err(format!(
                    "--only {id}: no such contender (one of {})",
                    contenders::ids()
                ))
            }
        })
        .collect()
}
