//! One module per subcommand.

pub mod audit;
mod children;
mod demo;
mod dhis2;
mod export;
mod generate;
mod import;
mod jobs;
mod keys;
mod lookup_bench;
mod matching;
mod migrate;
mod review_queue;
mod serve;
mod simulate;
mod targeting;
mod tokens;
pub mod users;

use anyhow::Context;
use inkingi_store::{ConnectOptions, Store, StoreError};

use crate::cli::{Cli, Command, MatchCommand};
use crate::config::{Config, ConfigError};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Generating and record linkage on files need neither a database nor the service's
    // configuration; for `match`, --config is the linkage configuration.
    let overrides = cli.overrides();
    let command = match cli.command {
        Command::Generate(args) => return generate::run(args).await,
        Command::Match(MatchCommand::Run(args)) => {
            // The database comes from --database-url or the environment, not a config file.
            let config = Config::load(None, &overrides)?;
            return matching::run_registry(&config, &args, cli.global.config.as_deref()).await;
        }
        Command::Match(cmd) => return matching::run_command(cmd, cli.global.config.as_deref()),
        Command::Simulate(cmd) => return simulate::run(cmd).await,
        Command::Keys(cmd) => return keys::run(cmd),
        other => other,
    };
    let config = Config::load(cli.global.config.as_deref(), &overrides)?;
    crate::logging::init(&config);
    match command {
        Command::Serve(args) => serve::run(&config, &args).await,
        Command::Worker(args) => serve::worker_only(&config, &args).await,
        Command::Migrate => migrate::run(&config).await,
        Command::Demo(args) => demo::run(&config, &args).await,
        Command::Jobs(cmd) => jobs::run(&config, cmd).await,
        Command::Users(cmd) => users::run(&config, cmd).await,
        Command::Tokens(cmd) => tokens::run(&config, cmd).await,
        Command::Audit(cmd) => audit::run(&config, cmd).await,
        Command::Import(args) => import::run(&config, &args).await,
        Command::Export(args) => export::run(&config, &args).await,
        Command::Targeting(cmd) => targeting::run(&config, cmd).await,
        Command::Programmes(cmd) => targeting::programmes(&config, cmd).await,
        Command::Dhis2(cmd) => dhis2::run(&config, cmd).await,
        Command::Children(cmd) => children::run(&config, cmd).await,
        // Handled above, before the configuration is loaded.
        Command::Generate(_) | Command::Match(_) | Command::Simulate(_) | Command::Keys(_) => {
            Ok(())
        }
    }
}

/// 2: bad configuration or usage; 3: the database cannot be reached; 4: the audit chain is
/// broken; 1: anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<ConfigError>().is_some() {
        return 2;
    }
    if let Some(inkingi_synth::Error::Config(_)) = e.downcast_ref() {
        return 2;
    }
    if e.downcast_ref::<audit::ChainBroken>().is_some() {
        return 4;
    }
    if let Some(
        inkingi_interop::registry_io::import::ImportError::Header { .. }
        | inkingi_interop::registry_io::import::ImportError::Source(_)
        | inkingi_interop::registry_io::import::ImportError::OutOfOrder { .. },
    ) = e.downcast_ref()
    {
        return 2;
    }
    if let Some(inkingi_server::auth::service::AdminError::Invalid(_)) = e.downcast_ref() {
        return 2;
    }
    match e.downcast_ref::<StoreError>() {
        Some(StoreError::BadUrl { .. }) => 2,
        Some(StoreError::Connect { .. }) | Some(StoreError::Unavailable(_)) => 3,
        _ => 1,
    }
}

/// Connects to the configured database; errors say which database and why.
pub async fn connect(config: &Config) -> anyhow::Result<Store> {
    let mut opts = ConnectOptions::new(&config.database_url);
    opts.max_connections = config.db_max_connections;
    let store = Store::connect(&opts).await?;
    Ok(store)
}

/// Connects and applies pending migrations.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<Store> {
    let store = connect(config).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    Ok(store)
}
