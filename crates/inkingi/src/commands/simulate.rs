//! `simulate`: simulators of outside systems, serving until SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context;
use inkingi_interop::simulate::faults::FaultPlan;
use inkingi_interop::simulate::national_id::{load_people, IdPlan, IdRegistry};
use inkingi_interop::simulate::subscriber::Subscriber;

use crate::cli::{CrvsArgs, Dhis2SimArgs, IdArgs, SimulateCommand, SmsSimArgs, SubscriberArgs};

pub async fn run(cmd: SimulateCommand) -> anyhow::Result<()> {
    match cmd {
        SimulateCommand::Subscriber(args) => subscriber(args).await,
        SimulateCommand::Id(args) => national_id(args).await,
        SimulateCommand::Crvs(args) => crvs(args).await,
        SimulateCommand::Dhis2(args) => dhis2(args).await,
        SimulateCommand::Sms(args) => sms(args).await,
    }
}

async fn crvs(args: CrvsArgs) -> anyhow::Result<()> {
    use inkingi_interop::simulate::crvs::{CrvsPlan, CrvsRegistry};
    let people = match (&args.people, args.households) {
        (Some(path), _) => load_people(path).map_err(anyhow::Error::msg)?,
        (None, Some(n)) => generated_people(n, args.seed).await?,
        (None, None) => anyhow::bail!("give --people FILE or --households N"),
    };
    let plan = CrvsPlan {
        faults: FaultPlan {
            seed: args.seed,
            fail_share: args.fail_share,
            outage_after: args.outage_after,
            outage: Duration::from_secs(args.outage_secs),
            latency: Duration::from_millis(args.latency_ms),
            lost_ack_share: 0.0,
        },
        duplicate_share: args.duplicate_share,
        reorder_share: args.reorder_share,
        noisy_share: args.noisy_share,
        unknown_share: args.unknown_share,
        token: args.token,
        every: args.every_secs.map(|s| Duration::from_secs(s.max(1))),
        ..Default::default()
    };
    let sim = CrvsRegistry::start(args.listen, plan, people).await?;
    println!(
        "CRVS simulator drawing from {} people, listening on http://{}",
        sim.people(),
        sim.addr()
    );
    println!("connectors.crvs.url = \"{}\"", sim.url());
    println!(
        "emit events: POST http://{}/admin/emit {{\"births\": 5, \"deaths\": 2}}",
        sim.addr()
    );
    tokio::signal::ctrl_c().await?;
    sim.stop();
    let s = sim.stats();
    println!(
        "{} event(s), {} delivered in {} attempt(s), {} duplicate(s) and {} swap(s) injected, {} given up",
        s.events, s.delivered, s.attempts, s.duplicates_sent, s.reordered, s.given_up
    );
    Ok(())
}

async fn dhis2(args: Dhis2SimArgs) -> anyhow::Result<()> {
    use inkingi_interop::dhis2::Mapping;
    use inkingi_interop::simulate::dhis2::{load_children, Dhis2Plan, Dhis2Sim, ROOT_ORG_UNIT};
    let mapping = match &args.mapping {
        None => Mapping::embedded()?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Mapping::parse_toml(&path.display().to_string(), &text)?
        }
    };
    let today = chrono::Utc::now().date_naive();
    let children = match &args.people {
        Some(path) => load_children(path, &mapping, today).map_err(anyhow::Error::msg)?,
        None => made_up_children(args.children, args.seed, &mapping, today),
    };
    let plan = Dhis2Plan {
        faults: FaultPlan {
            seed: args.seed,
            fail_share: args.fail_share,
            outage_after: args.outage_after,
            outage: Duration::from_secs(args.outage_secs),
            latency: Duration::from_millis(args.latency_ms),
            lost_ack_share: 0.0,
        },
        token: args.token.clone(),
        missed_share: args.missed_share,
        reject_data_elements: args.reject_data_element.clone(),
    };
    let sim = Dhis2Sim::start(args.listen, plan, mapping, &children, today).await?;
    // The token itself is not printed: whoever started the simulator gave it.
    println!(
        "DHIS2 simulator holding {} tracked entities and {} events, listening on {}",
        sim.tracked_entities().len(),
        sim.events().len(),
        sim.url()
    );
    println!(
        "[connectors.dhis2] url = \"{}\", org_unit = \"{ROOT_ORG_UNIT}\" (token: --token)",
        sim.url()
    );
    tokio::signal::ctrl_c().await?;
    sim.stop();
    let s = sim.stats();
    println!(
        "{} request(s): {} page(s) served, {} unauthorised, {} failed by injection, {} refused in outage",
        s.requests, s.pages, s.unauthorised, s.injected_failures, s.outage_refusals
    );
    Ok(())
}

/// Children under six with made-up names, spread over the mapped organisation units, half of
/// them with a mother known by a (made-up, well-formed) national ID.
fn made_up_children(
    n: u32,
    seed: u64,
    mapping: &inkingi_interop::dhis2::Mapping,
    today: chrono::NaiveDate,
) -> Vec<inkingi_interop::simulate::dhis2::SimChild> {
    use inkingi_interop::simulate::dhis2::{SimChild, SimMother};
    use rand::{Rng, SeedableRng};
    const GIVEN: &[&str] = &[
        "Keza", "Ineza", "Ganza", "Shimwa", "Hirwa", "Teta", "Manzi", "Gisa",
    ];
    const FAMILY: &[&str] = &[
        "Uwase",
        "Mukamana",
        "Niyonzima",
        "Habimana",
        "Uwimana",
        "Nshuti",
    ];
    const MOTHER: &[&str] = &["Aline", "Claudine", "Diane", "Grace", "Jeanne", "Solange"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let units: Vec<String> = mapping.org_units.keys().cloned().collect();
    (0..n)
        .map(|i| {
            let days = rng.random_range(0..6 * 365 - 1);
            let family = FAMILY[rng.random_range(0..FAMILY.len())];
            let mother = (i % 2 == 0).then(|| SimMother {
                given_name: MOTHER[rng.random_range(0..MOTHER.len())].into(),
                family_name: family.into(),
                national_id: Some(format!(
                    "1{}7{:010}",
                    rng.random_range(1975..2005),
                    rng.random_range(0..10_000_000_000u64)
                )),
                phone: Some(format!("+2507{:08}", rng.random_range(0..100_000_000u32))),
            });
            SimChild {
                given_name: GIVEN[rng.random_range(0..GIVEN.len())].into(),
                family_name: family.into(),
                sex: if rng.random_bool(0.5) { "F" } else { "M" }.into(),
                birth_date: today - chrono::Days::new(days),
                birth_registration: None,
                org_unit: units
                    .get(i as usize % units.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| ROOT.into()),
                mother,
            }
        })
        .collect()
}

const ROOT: &str = inkingi_interop::simulate::dhis2::ROOT_ORG_UNIT;

async fn subscriber(args: SubscriberArgs) -> anyhow::Result<()> {
    let plan = FaultPlan {
        seed: args.seed,
        fail_share: args.fail_share,
        outage_after: args.outage_after,
        outage: Duration::from_secs(args.outage_secs),
        latency: Duration::from_millis(args.latency_ms),
        lost_ack_share: args.duplicate_share,
    };
    let sim = Subscriber::start(args.listen, plan).await?;
    println!("subscriber simulator listening on http://{}", sim.addr());
    println!("sender_uri: {}", sim.sender_uri());
    tokio::signal::ctrl_c().await?;
    sim.stop();
    let s = sim.stats();
    println!(
        "{} notify request(s), {} event(s) taken, {} duplicate(s), {} out of order",
        s.requests, s.effects, s.duplicates, s.out_of_order
    );
    Ok(())
}

async fn national_id(args: IdArgs) -> anyhow::Result<()> {
    let people = match (&args.people, args.households) {
        (Some(path), _) => load_people(path).map_err(anyhow::Error::msg)?,
        (None, Some(n)) => generated_people(n, args.seed).await?,
        (None, None) => anyhow::bail!("give --people FILE or --households N"),
    };
    let plan = IdPlan {
        faults: FaultPlan {
            seed: args.seed,
            fail_share: args.fail_share,
            outage_after: args.outage_after,
            outage: Duration::from_secs(args.outage_secs),
            latency: Duration::from_millis(args.latency_ms),
            lost_ack_share: 0.0,
        },
        mismatch_share: args.mismatch_share,
    };
    let sim = IdRegistry::start(args.listen, plan, people).await?;
    println!(
        "national ID registry simulator holding {} people, listening on http://{}",
        sim.people(),
        sim.addr()
    );
    println!("connectors.national_id.url = \"{}\"", sim.url());
    tokio::signal::ctrl_c().await?;
    sim.stop();
    let s = sim.stats();
    println!(
        "{} request(s): {} found, {} not found, {} failed by injection, {} refused in outage",
        s.requests, s.found, s.not_found, s.injected_failures, s.outage_refusals
    );
    Ok(())
}

/// The people of a registry generated as `inkingi generate --households N --seed S` would.
async fn generated_people(
    households: u64,
    seed: u64,
) -> anyhow::Result<Vec<inkingi_interop::simulate::national_id::IdPerson>> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let out = dir.path().to_path_buf();
    let config = inkingi_synth::GenerateConfig::new(households, seed);
    tokio::task::spawn_blocking(move || inkingi_synth::generate(&config, &out, &|_| {}))
        .await
        .context("generator thread")??;
    load_people(&dir.path().join("members.csv")).map_err(anyhow::Error::msg)
}

async fn sms(args: SmsSimArgs) -> anyhow::Result<()> {
    use inkingi_interop::simulate::sms::{SmsPlan, SmsSim};
    use inkingi_interop::sms::Provider;
    let protocol = args
        .protocol
        .as_deref()
        .map(Provider::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--protocol {e}"))?;
    let plan = SmsPlan {
        faults: FaultPlan {
            seed: args.seed,
            fail_share: args.fail_share,
            outage_after: args.outage_after,
            outage: Duration::from_secs(args.outage_secs),
            latency: Duration::from_millis(args.latency_ms),
            lost_ack_share: args.lost_ack_share,
        },
        protocol,
        username: args.username.clone(),
        secret: args.secret.clone(),
        callback_url: args.callback_url,
    };
    let sim = SmsSim::start(args.listen, plan).await?;
    println!("SMS gateway simulator listening on {}", sim.url());
    println!(
        "[connectors.sms] provider = \"{}\", url = \"{}\", username = \"{}\" (password / api_key: --secret)",
        protocol.unwrap_or(Provider::Kannel).as_str(),
        sim.url(),
        args.username
    );
    println!("messages taken: GET {}/messages", sim.url());
    tokio::signal::ctrl_c().await?;
    sim.stop();
    let s = sim.stats();
    println!(
        "{} request(s): {} taken, {} refused, {} failure(s) and {} outage refusal(s) injected, {} answer(s) lost, {} report(s) sent",
        s.requests, s.taken, s.refused, s.injected_failures, s.outage_refusals, s.lost_answers, s.reports_sent
    );
    Ok(())
}
