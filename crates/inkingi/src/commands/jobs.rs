//! `inkingi jobs …`: inspect and replay background jobs.

use crate::cli::JobsCommand;
use crate::config::Config;

pub async fn run(config: &Config, cmd: JobsCommand) -> anyhow::Result<()> {
    let _store = super::connect_and_migrate(config).await?;
    match cmd {
        JobsCommand::List(_) => anyhow::bail!("jobs list: not built yet"),
    }
}
