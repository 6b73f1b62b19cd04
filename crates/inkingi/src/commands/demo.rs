//! `inkingi demo`: a working system on a fresh machine with one command.
//!
//! On first start the registry is filled with a generated district-sized dataset (the same
//! generator and importer as `inkingi generate` and `inkingi import`), and two users are made:
//! `admin` (system administrator) and `officer` (a national officer who may read and change
//! the registry and approve change requests).

use std::time::Instant;

use anyhow::Context;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_interop::registry_io::import::{import_registry, ImportOptions};
use inkingi_store::registry::HouseholdQuery;
use inkingi_store::Store;
use inkingi_synth::GenerateConfig;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::ServeArgs;
use crate::config::Config;

/// Households in the demo registry: about a district's worth of a sector-level programme
/// office, big enough to page and search, small enough to load in seconds.
const DEMO_HOUSEHOLDS: u64 = 20_000;
/// Fixed, so every demo shows the same people.
const DEMO_SEED: u64 = 2026;

pub async fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    // The demo serves plain HTTP on this machine; browsers drop Secure cookies there unless the
    // host is literally "localhost", so sign-in would not stick on 127.0.0.1.
    if config.listen.ip().is_loopback() {
        config.auth.cookie_secure = false;
    }
    let store = super::connect_and_migrate(&config).await?;
    load_demo_registry(&store).await?;
    load_demo_programmes(&store).await?;
    let admin_password = super::users::ensure_demo_admin(&config, &store).await?;
    let officer_password =
        super::users::ensure_demo_user(&config, &store, "officer", Role::NationalOfficer).await?;
    super::serve::serve_store(&config, args, store, |addr| {
        println!("Inkingi demo is running: open http://{addr}/ (Ctrl-C stops it)");
        announce("admin", "system administrator", &admin_password);
        announce(
            "officer",
            "national officer: registry and approvals",
            &officer_password,
        );
    })
    .await
}

/// Stores the illustrative programme catalogue and scores the demo registry once.
async fn load_demo_programmes(store: &Store) -> anyhow::Result<()> {
    let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative()
        .map_err(|e| anyhow::anyhow!("shipped programme catalogue: {e}"))?;
    let load = inkingi_store::programmes::load_catalogue(store, &catalogue, "demo").await?;
    if load.programmes_created > 0 {
        println!(
            "demo programmes loaded: {} agencies, {} programmes (illustrative configuration)",
            load.agencies, load.programmes_created
        );
        if let Some(model) = store.targeting().current_model().await? {
            let run = store.targeting().score_all(&model, |_| {}).await?;
            println!(
                "demo registry scored: {} households in {:.1} s",
                run.households, run.seconds
            );
        }
    }
    Ok(())
}

fn announce(user: &str, what: &str, password: &Option<SecretString>) {
    match password {
        Some(pw) => println!(
            "sign in as '{user}' ({what}) with the one-time password {} (shown only now; you \
             will choose your own at first sign-in)",
            pw.expose_secret()
        ),
        None => println!(
            "sign in as '{user}' ({what}; created by an earlier demo run: \
             `inkingi users reset-password {user}` issues a new one-time password)"
        ),
    }
}

/// Generates and imports the demo registry when the registry is empty. Re-running is safe:
/// an interrupted load resumes, because rows carry source keys.
async fn load_demo_registry(store: &Store) -> anyhow::Result<()> {
    let any = store
        .registry()
        .list_households(
            &AreaScope::national(),
            &HouseholdQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    if !any.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    println!("loading the demo registry ({DEMO_HOUSEHOLDS} generated households)…");
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config = GenerateConfig::new(DEMO_HOUSEHOLDS, DEMO_SEED);
    let out = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || inkingi_synth::generate(&config, &out, &|_| {}))
        .await
        .context("generator thread")??;
    let open = |name: &str| {
        let path = dir.path().join(name);
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))
    };
    let mut opts = ImportOptions::new("demo");
    opts.actor = "demo".into();
    let summary = import_registry(
        store,
        std::io::BufReader::new(open("households.csv")?),
        std::io::BufReader::new(open("members.csv")?),
        std::io::sink(),
        &opts,
        &mut |_| {},
    )
    .await?;
    println!(
        "demo registry loaded in {:.1} s: {summary}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
