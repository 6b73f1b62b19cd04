//! The command line. Every option that configures the service has an `INKINGI_*` twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use inkingi_domain::jobs::{JobName, JobStatus};
use inkingi_store::jobs::JobId;

use crate::config::{LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(name = "inkingi", version, about = "Social registry, beneficiary registry and integrated child record", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML configuration file; environment variables and flags override it.
    #[arg(long, global = true, env = "INKINGI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// sqlite://PATH (default: sqlite://inkingi-data/inkingi.db) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        global = true,
        env = "INKINGI_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "INKINGI_LOG_FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or inkingi=debug (RUST_LOG wins when set).
    #[arg(long, global = true, env = "INKINGI_LOG_LEVEL")]
    pub log_level: Option<String>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (and, unless --no-worker, the background worker). Applies migrations first.
    Serve(ServeArgs),
    /// Run only the background worker that executes queued jobs.
    Worker,
    /// Apply pending database migrations and load reference data, then exit.
    Migrate,
    /// Try Inkingi: create ./inkingi-data, migrate, create an admin user, serve.
    Demo(ServeArgs),
    /// Inspect and replay background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "INKINGI_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not run the background worker in this process (run `inkingi worker` elsewhere).
    #[arg(long, env = "INKINGI_NO_WORKER")]
    pub no_worker: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List(JobsListArgs),
    /// Replay a dead job from its first attempt (or run a queued one now); --dead replays all.
    Retry(JobsRetryArgs),
    /// Enqueue system.probe self-test jobs; with --wait, wait for them and report.
    Probe(JobsProbeArgs),
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    /// Only jobs in this state: queued, running, succeeded or dead.
    #[arg(long)]
    pub status: Option<JobStatus>,
    /// Only jobs of this queue.
    #[arg(long)]
    pub queue: Option<JobName>,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "dead"])))]
pub struct JobsRetryArgs {
    /// The job's id, as `inkingi jobs list` shows it.
    pub id: Option<JobId>,
    /// Replay every dead job instead.
    #[arg(long)]
    pub dead: bool,
    /// With --dead: only the dead jobs of this queue.
    #[arg(long, requires = "dead")]
    pub queue: Option<JobName>,
}

#[derive(Debug, Args)]
pub struct JobsProbeArgs {
    /// How many probe jobs to enqueue (1 to 1000000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// How long each run sleeps, in milliseconds (at most 600000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub sleep_ms: u64,
    /// How many attempts of each job fail (with a retryable error) before one succeeds.
    #[arg(long, default_value_t = 0)]
    pub fail_times: u32,
    /// Attempts before a probe is parked as dead (default: fail-times + 2, so probes succeed
    /// even if one worker crashes; set it to fail-times or less to exercise dead-lettering).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: Option<u32>,
    /// Wait up to this many seconds for every probe to finish, then report runs, duplicates
    /// and dead jobs; exits non-zero on a duplicate run or a timeout.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub wait: Option<u64>,
}

impl Cli {
    pub fn overrides(&self) -> Overrides {
        let listen = match &self.command {
            Command::Serve(a) | Command::Demo(a) => a.listen,
            _ => None,
        };
        Overrides {
            database_url: self.global.database_url.clone(),
            listen,
            log_format: self.global.log_format,
            log_level: self.global.log_level.clone(),
        }
    }
}
