//! `inkingi demo`: a working system on a fresh machine with one command.

use crate::cli::ServeArgs;
use crate::config::Config;

pub async fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    super::serve::serve_store(config, args, store, |addr| {
        println!("Inkingi demo is running: open http://{addr}/ (Ctrl-C stops it)");
    })
    .await
}
