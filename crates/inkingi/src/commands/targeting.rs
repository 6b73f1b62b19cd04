//! `inkingi targeting score`: scores every active household of the registry with a scoring
//! model (the current one unless `--model ID[:VERSION]`), page by page;
//! `inkingi targeting simulate`: a simulation by area as CSV (see docs/TARGETING.md); and
//! `inkingi programmes load`: stores a programme catalogue (agencies and programmes).

use std::collections::BTreeMap;

use anyhow::Context;
use indicatif::ProgressBar;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::programmes::Catalogue;
use inkingi_server::auth::service::{Actor, AdminError};
use inkingi_server::registry::FORM_ID;
use inkingi_store::programmes::load_catalogue;
use inkingi_store::simulation::{resolve, ModelRef, RuleChoice, RuleSetRef, SimulationRequest};
use inkingi_store::targeting_facts::FactsRefresh;

use crate::cli::{ProgrammesCommand, SimulateArgs, TargetingCommand};
use crate::config::Config;

pub async fn run(config: &Config, cmd: TargetingCommand) -> anyhow::Result<()> {
    match cmd {
        TargetingCommand::Score { model } => score(config, model.as_deref()).await,
        TargetingCommand::Simulate(args) => simulate(config, *args).await,
        TargetingCommand::SeedSynthetic { households } => seed(config, households).await,
        TargetingCommand::Facts { rebuild } => facts(config, rebuild).await,
    }
}

async fn facts(config: &Config, rebuild: bool) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let t = store.targeting();
    let started = std::time::Instant::now();
    let done = if rebuild {
        t.rebuild_facts().await?
    } else {
        t.refresh_facts().await?
    };
    let seconds = started.elapsed().as_secs_f64();
    match done {
        FactsRefresh::Fresh => println!("facts blocks already up to date ({seconds:.1} s)"),
        FactsRefresh::Updated { households, blocks } => {
            println!("re-packed {blocks} facts blocks ({households} households) in {seconds:.1} s")
        }
        FactsRefresh::Rebuilt { households, blocks } => println!(
            "packed {households} households into {blocks} facts blocks in {seconds:.1} s \
             ({:.0} households/s)",
            households as f64 / seconds.max(1e-9)
        ),
    }
    store.close().await;
    Ok(())
}

async fn seed(config: &Config, households: i64) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let catalogue = Catalogue::rw_illustrative()
        .map_err(|e| AdminError::Invalid(format!("programme catalogue: {e}")))?;
    load_catalogue(&store, &catalogue, "cli").await?;
    let seconds = inkingi_store::synthetic::seed(&store, households).await?;
    println!("seeded {households} synthetic households in {seconds:.1} s");
    store.close().await;
    Ok(())
}

fn model_ref(field: &str, spec: &str) -> Result<ModelRef, AdminError> {
    Ok(match spec.split_once(':') {
        Some((id, v)) => ModelRef {
            id: id.to_string(),
            version: Some(v.parse::<u32>().map_err(|_| {
                AdminError::Invalid(format!("{field}: '{v}' is not a version number"))
            })?),
        },
        None => ModelRef {
            id: spec.to_string(),
            version: None,
        },
    })
}

/// `CODE=ID:VERSION` options and `CODE=RULE` options into replacement rules by programme.
fn rule_choices(
    into: &mut BTreeMap<String, RuleChoice>,
    (sets_flag, sets): (&str, &[String]),
    (rules_flag, rules): (&str, &[String]),
) -> Result<(), AdminError> {
    let split = |flag: &str, s: &str| {
        s.split_once('=')
            .map(|(c, r)| (c.trim().to_string(), r.to_string()))
            .ok_or_else(|| AdminError::Invalid(format!("{flag}: '{s}' is not CODE=...")))
    };
    for s in sets {
        let (code, spec) = split(sets_flag, s)?;
        let bad = || AdminError::Invalid(format!("{sets_flag}: '{spec}' is not ID:VERSION"));
        let (id, v) = spec.rsplit_once(':').ok_or_else(bad)?;
        let version = v.parse::<u32>().map_err(|_| bad())?;
        into.insert(
            code,
            RuleChoice {
                rule_set: Some(RuleSetRef {
                    id: id.to_string(),
                    version,
                }),
                rule: None,
            },
        );
    }
    for s in rules {
        let (code, rule) = split(rules_flag, s)?;
        into.insert(
            code,
            RuleChoice {
                rule_set: None,
                rule: Some(rule),
            },
        );
    }
    Ok(())
}

fn simulation_request(args: &SimulateArgs) -> anyhow::Result<SimulationRequest> {
    let mut req: SimulationRequest = match &args.request {
        None => SimulationRequest::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| AdminError::Invalid(format!("--request: {e}")))?
        }
    };
    if args.by.is_some() {
        req.by = args.by.clone();
    }
    if !args.programmes.is_empty() {
        req.programmes = Some(args.programmes.clone());
    }
    if let Some(m) = &args.model {
        req.model = Some(model_ref("--model", m)?);
    }
    rule_choices(
        &mut req.rules,
        ("--rule-set", &args.rule_sets),
        ("--rule", &args.rules),
    )?;
    let comparing = args.compare_model.is_some()
        || !args.compare_rule_sets.is_empty()
        || !args.compare_rules.is_empty();
    if comparing {
        let c = req.compare.get_or_insert_with(Default::default);
        if let Some(m) = &args.compare_model {
            c.model = Some(model_ref("--compare-model", m)?);
        }
        rule_choices(
            &mut c.rules,
            ("--compare-rule-set", &args.compare_rule_sets),
            ("--compare-rule", &args.compare_rules),
        )?;
    }
    Ok(req)
}

async fn simulate(config: &Config, args: SimulateArgs) -> anyhow::Result<()> {
    let req = simulation_request(&args)?;
    let scope = match &args.scope {
        None => AreaScope::national(),
        Some(s) => AreaScope::parse(s).map_err(|e| AdminError::Invalid(format!("--scope: {e}")))?,
    };
    let store = super::connect_and_migrate(config).await?;
    let form = store
        .registry()
        .latest_form(FORM_ID)
        .await?
        .ok_or_else(|| AdminError::Invalid(format!("form {FORM_ID} is not published")))?
        .schema;
    let sim = resolve(&store, &req, &form)
        .await?
        .map_err(|r| AdminError::Invalid(format!("{}: {}", r.field, r.reason)))?;
    let actor = Actor::cli();
    let mut audit = AuditRecord::new(&actor.name, "targeting.simulate", "aggregate");
    audit.via = actor.via.clone();
    audit.fields = vec![
        format!("scope={}", scope.to_stored()),
        format!("by={}", sim.level.as_str()),
    ];
    let started = std::time::Instant::now();
    let report = store.targeting().simulate(&scope, sim).await?;
    let seconds = started.elapsed().as_secs_f64();
    store.audit().append(vec![audit]).await?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        report.to_csv()
    };
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    eprintln!(
        "simulated {} households in {} areas in {seconds:.1} s",
        report.total.households,
        report.areas.len()
    );
    store.close().await;
    Ok(())
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
