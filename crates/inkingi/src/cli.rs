//! The command line. Every option that configures the service has an `INKINGI_*` twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    /// Only jobs in this state: queued, running, succeeded or dead.
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
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
