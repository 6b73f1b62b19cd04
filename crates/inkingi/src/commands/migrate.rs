use crate::config::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let store = super::connect(config).await?;
    let pending = store.system().pending_migrations().await?;
    store.migrate().await?;
    println!(
        "migrated {} database: {} migration(s) applied, reference data current ({:.2}s)",
        store.kind().as_str(),
        pending.len(),
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}
