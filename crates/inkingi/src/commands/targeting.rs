//! `inkingi targeting score`: scores every active household of the registry with a scoring
//! model (the current one unless `--model ID[:VERSION]`), page by page, and
//! `inkingi programmes load`: stores a programme catalogue (agencies and programmes).

use anyhow::Context;
use indicatif::ProgressBar;
use inkingi_domain::programmes::Catalogue;
use inkingi_server::auth::service::AdminError;
use inkingi_store::programmes::load_catalogue;

use crate::cli::{ProgrammesCommand, TargetingCommand};
use crate::config::Config;

pub async fn run(config: &Config, cmd: TargetingCommand) -> anyhow::Result<()> {
    match cmd {
        TargetingCommand::Score { model } => score(config, model.as_deref()).await,
    }
}

async fn score(config: &Config, model: Option<&str>) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let t = store.targeting();
    let model = match model {
        None => t
            .current_model()
            .await?
            .ok_or_else(|| AdminError::Invalid("no scoring model is saved".into()))?,
        Some(spec) => {
            let (id, version) = match spec.split_once(':') {
                Some((id, v)) => (
                    id,
                    Some(v.parse::<u32>().map_err(|_| {
                        AdminError::Invalid(format!("--model: '{v}' is not a version number"))
                    })?),
                ),
                None => (spec, None),
            };
            t.model(id, version)
                .await?
                .ok_or_else(|| AdminError::Invalid(format!("--model: no model {spec}")))?
                .model
        }
    };
    let bar = ProgressBar::new_spinner();
    let mut done = 0u64;
    let run = t
        .score_all(&model, |n| {
            done += n;
            bar.set_message(format!("{done} households scored"));
        })
        .await?;
    bar.finish_and_clear();
    println!(
        "scored {} households with {} v{} in {:.1} s ({:.0} households/s)",
        run.households,
        model.id,
        model.version,
        run.seconds,
        run.households as f64 / run.seconds.max(1e-9)
    );
    store.close().await;
    Ok(())
}

pub async fn programmes(config: &Config, cmd: ProgrammesCommand) -> anyhow::Result<()> {
    let ProgrammesCommand::Load { file } = cmd;
    let catalogue = match &file {
        None => Catalogue::rw_illustrative(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Catalogue::from_toml(&text)
        }
    }
    .map_err(|e| AdminError::Invalid(format!("programme catalogue: {e}")))?;
    let store = super::connect_and_migrate(config).await?;
    let load = load_catalogue(&store, &catalogue, "cli").await?;
    println!(
        "{} agencies stored; {} programmes created, {} already present{}",
        load.agencies,
        load.programmes_created,
        load.programmes_kept,
        if catalogue.illustrative {
            " (illustrative configuration)"
        } else {
            ""
        }
    );
    store.close().await;
    Ok(())
}
