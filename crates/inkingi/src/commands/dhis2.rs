//! `dhis2 sync`: pull the child record's facts from DHIS2, here or as a job.

use std::time::Instant;

use inkingi_server::children::dhis2::{Dhis2Sync, Dhis2SyncJob};
use inkingi_store::jobs::NewJob;

use crate::cli::{Dhis2Command, Dhis2PushArgs, Dhis2SyncArgs};
use crate::config::Config;
use inkingi_domain::children::indicators::RefMonth;
use inkingi_server::children::push::{enqueue_month, push_sector};

pub async fn run(config: &Config, cmd: Dhis2Command) -> anyhow::Result<()> {
    match cmd {
        Dhis2Command::Sync(args) => sync(config, &args).await,
        Dhis2Command::Push(args) => push(config, &args).await,
    }
}

async fn push(config: &Config, args: &Dhis2PushArgs) -> anyhow::Result<()> {
    let Some(d) = &config.connectors.dhis2 else {
        anyhow::bail!(
            "no [connectors.dhis2] in the configuration: set its url, token and org_unit"
        );
    };
    let month = RefMonth::parse(&args.month).map_err(|e| anyhow::anyhow!("--month: {e}"))?;
    let mapping = d.mapping().map_err(anyhow::Error::msg)?;
    let Some(agg) = mapping.aggregate.clone() else {
        anyhow::bail!("the DHIS2 mapping has no [aggregate]: nothing says where indicators go");
    };
    let store = super::connect_and_migrate(config).await?;
    if !args.now {
        let sectors = enqueue_month(&store, &agg, month).await?;
        println!(
            "queued {} dhis2.push job(s) for {month} (sectors {}); the worker runs them",
            sectors.len(),
            sectors.join(", ")
        );
        store.close().await;
        return Ok(());
    }
    let sync = Dhis2Sync::new(d.connector().map_err(anyhow::Error::msg)?, mapping)
        .map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    for sector in agg.org_units.keys() {
        match push_sector(&sync, &store, sector, month).await {
            Ok(r) => {
                println!(
                    "sector {sector} → {} period {}: {} ({} imported, {} updated, {} ignored; \
                     {} value(s) sent)",
                    r.org_unit, r.period, r.status, r.imported, r.updated, r.ignored, r.values_sent
                );
                for c in r.conflicts.as_array().into_iter().flatten() {
                    println!("  conflict: {} — {}", c["object"], c["value"]);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("sector {sector}: {e}");
            }
        }
    }
    store.close().await;
    if failed > 0 {
        anyhow::bail!("{failed} sector(s) not pushed (see above)");
    }
    Ok(())
}

async fn sync(config: &Config, args: &Dhis2SyncArgs) -> anyhow::Result<()> {
    let Some(d) = &config.connectors.dhis2 else {
        anyhow::bail!(
            "no [connectors.dhis2] in the configuration: set its url, token and org_unit"
        );
    };
    let store = super::connect_and_migrate(config).await?;
    if args.enqueue {
        let id = store
            .jobs()
            .enqueue_now(NewJob::of(&Dhis2SyncJob { slot: None })?)
            .await?;
        println!("queued job {id} (dhis2.sync); the worker runs it");
        store.close().await;
        return Ok(());
    }
    let sync = Dhis2Sync::new(
        d.connector().map_err(anyhow::Error::msg)?,
        d.mapping().map_err(anyhow::Error::msg)?,
    )
    .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let result = sync.run(&store).await;
    store.close().await;
    let s = result
        .map_err(|e| anyhow::anyhow!("DHIS2 sync stopped (pages stored so far are kept): {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} page(s): {} tracked entities, {} events; {} record(s) stored, {} already stored, \
         {} refused, {} skipped; {secs:.1} s",
        s.pages, s.tracked_entities, s.events, s.created, s.existing, s.refused, s.skipped
    );
    Ok(())
}
