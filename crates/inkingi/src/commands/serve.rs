//! `serve` and `worker`: the long-running roles, both stopping gracefully on SIGTERM/SIGINT.

use std::time::Duration;

use anyhow::Context;
use inkingi_server::{AppState, ServerSettings};
use inkingi_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{ServeArgs, WorkerArgs};
use crate::config::Config;

pub async fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    serve_store(config, args, store, |_| {}).await
}

/// Serves an already-migrated store; `on_listening` sees the bound address (the demo prints it).
pub async fn serve_store(
    config: &Config,
    args: &ServeArgs,
    store: Store,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = store.kind().as_str(), "listening");
    println!("inkingi listening on http://{addr}");
    on_listening(addr);

    let shutdown = shutdown_on_signal();
    let worker = (!args.no_worker)
        .then(|| tokio::spawn(run_worker(store.clone(), config.clone(), shutdown.clone())));
    let state = AppState::new(store.clone(), server_settings(config)?)?;
    if config.lookup.build_at_start {
        state.lookup.start(&store);
    }
    inkingi_server::serve(listener, state, shutdown.clone()).await?;
    if let Some(w) = worker {
        w.await.context("worker task")??;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The worker alone; with `--listen`, also its health, readiness and metrics endpoints, so an
/// orchestrator can probe it and Prometheus can scrape its job metrics.
pub async fn worker_only(config: &Config, args: &WorkerArgs) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let shutdown = shutdown_on_signal();
    let ops = match args.listen {
        Some(listen) => {
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "worker endpoints listening");
            println!("inkingi worker listening on http://{addr}");
            // Built before the worker starts: it installs the metrics recorder the worker's
            // job metrics go to.
            let state = AppState::new(store.clone(), server_settings(config)?)?;
            Some(tokio::spawn(inkingi_server::ops::serve(
                listener,
                state,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    println!("inkingi worker started");
    let worked = run_worker(store.clone(), config.clone(), shutdown.clone()).await;
    // Whatever ended the worker, stop the endpoints too.
    shutdown.cancel();
    if let Some(ops) = ops {
        ops.await.context("worker endpoints task")??;
    }
    store.close().await;
    worked
}

/// The worker and, beside it, the dispatcher of DCI event notifications and, when a national
/// ID registry is configured, the sweep that queues verifications; when DHIS2 is configured,
/// its sync jobs and their schedule.
async fn run_worker(
    store: Store,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    inkingi_interop::breaker::Breakers::global().configure(
        inkingi_interop::breaker::BreakerSettings {
            failure_threshold: config.dci.breaker_failures,
            open_for: Duration::from_millis(config.dci.breaker_open_ms),
        },
    );
    let dispatch = inkingi_interop::dci::notify::DispatchSettings {
        registry_id: config.dci.registry_id.clone(),
        poll_interval: Duration::from_millis(config.dci.notify_poll_ms),
        ..Default::default()
    };
    let dispatcher = tokio::spawn(inkingi_interop::dci::notify::run_dispatcher(
        store.clone(),
        dispatch,
        shutdown.clone(),
    ));
    let mut handlers = inkingi_interop::worker::Registry::with_builtins();
    if let Some(signer) = super::keys::message_signer(&config)? {
        use inkingi_interop::dci::{callback::CallbackHandler, notify::NotifyHandler};
        // Replace the unsigned built-ins of the same kinds.
        handlers = handlers
            .register(CallbackHandler::new()?.signed_by(Some(signer.clone())))
            .register(NotifyHandler::new()?.signed_by(Some(signer)));
    }
    let mut sweeper = None;
    let hold = config
        .connectors
        .crvs
        .as_ref()
        .map_or(600, |c| c.order_hold_secs);
    handlers = handlers.register(inkingi_server::crvs::ProcessHandler::new(
        inkingi_server::crvs::CrvsSettings {
            approval_tiers: config.registry.approval_tiers.clone(),
            order_hold: Duration::from_secs(hold),
            ..Default::default()
        },
    ));
    let mut subscriber = None;
    if let Some(c) = &config.connectors.crvs {
        let connector = c.connector().map_err(anyhow::Error::msg)?;
        handlers = handlers.register(inkingi_interop::crvs::CrvsSubscribeHandler::new(
            connector.clone(),
        )?);
        subscriber = Some(tokio::spawn(inkingi_interop::crvs::run_subscriber(
            store.clone(),
            connector,
            shutdown.clone(),
        )));
    }
    if let Some(id) = &config.connectors.national_id {
        let connector = id.connector().map_err(anyhow::Error::msg)?;
        handlers = handlers.register(inkingi_interop::national_id::IdVerifyHandler::new(
            connector.clone(),
        )?);
        sweeper = Some(tokio::spawn(inkingi_interop::national_id::run_sweeper(
            store.clone(),
            connector,
            shutdown.clone(),
        )));
    }
    handlers = handlers
        .register(inkingi_server::children::status::ServicesHandler)
        .register(inkingi_server::children::status::RecomputeHandler);
    let follower = tokio::spawn(inkingi_server::children::status::follow_registry(
        store.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    let mut schedule = None;
    if let Some(d) = &config.connectors.dhis2 {
        use inkingi_server::children::dhis2::{run_schedule, Dhis2Sync, Dhis2SyncHandler};
        let sync = Dhis2Sync::new(
            d.connector().map_err(anyhow::Error::msg)?,
            d.mapping().map_err(anyhow::Error::msg)?,
        )
        .map_err(anyhow::Error::msg)?;
        handlers = handlers.register(Dhis2SyncHandler::new(sync.clone()));
        handlers = handlers.register(inkingi_server::children::push::PushHandler::new(sync));
        if d.every_secs > 0 {
            schedule = Some(tokio::spawn(run_schedule(
                store.clone(),
                Duration::from_secs(d.every_secs),
                shutdown.clone(),
            )));
        }
    }
    let mut sms_schedule = None;
    if let Some(c) = &config.connectors.sms {
        use inkingi_server::children::reminders::{run_schedule, PlanRemindersHandler};
        let settings = c.settings().map_err(anyhow::Error::msg)?;
        let gateway = c
            .connector()
            .and_then(|g| g.gateway())
            .map_err(anyhow::Error::msg)?;
        handlers = handlers
            .register(inkingi_interop::sms::send::SendSmsHandler::new(
                gateway,
                settings.clone(),
            ))
            .register(PlanRemindersHandler::new(settings.clone()));
        sms_schedule = Some(tokio::spawn(run_schedule(
            store.clone(),
            settings,
            c.plan_at().map_err(anyhow::Error::msg)?,
            Duration::from_secs(c.poll_secs.max(1)),
            shutdown.clone(),
        )));
    }
    let worked = inkingi_interop::worker::run_with(
        store,
        worker_settings(&config),
        handlers,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    dispatcher.await.context("notification dispatcher task")?;
    if let Some(s) = sweeper {
        s.await.context("national ID sweep task")?;
    }
    if let Some(s) = subscriber {
        s.await.context("CRVS subscription task")?;
    }
    if let Some(s) = schedule {
        s.await.context("DHIS2 sync schedule task")?;
    }
    if let Some(s) = sms_schedule {
        s.await.context("SMS schedule task")?;
    }
    follower
        .await
        .context("registry follower of services due")?;
    worked
}

pub(crate) fn server_settings(config: &Config) -> anyhow::Result<ServerSettings> {
    let l = &config.lookup;
    if !(l.duplicate_share > 0.0 && l.duplicate_share < 1.0) {
        anyhow::bail!(
            "lookup.duplicate_share: {} is not a share between 0 and 1",
            l.duplicate_share
        );
    }
    let model = match &l.model {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("lookup.model: reading {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("lookup.model: {}", path.display()))?,
            )
        }
    };
    Ok(ServerSettings {
        body_limit: config.body_limit_bytes,
        request_timeout: Duration::from_secs(config.request_timeout_secs),
        auth: config.auth.settings(),
        approval_tiers: config.registry.approval_tiers.clone(),
        dci: super::keys::dci_settings(config)?,
        lookup: inkingi_server::lookup::LookupSettings {
            poll_interval: Duration::from_millis(l.poll_ms.max(10)),
            model,
            duplicate_share: l.duplicate_share,
        },
        children: inkingi_server::children::ChildrenSettings {
            field_keys: match &config.children.field_key_file {
                Some(path) => Some(std::sync::Arc::new(
                    inkingi_server::children::sealed::FieldKeys::load(path)
                        .map_err(anyhow::Error::msg)?,
                )),
                None => None,
            },
        },
    })
}

fn worker_settings(config: &Config) -> inkingi_interop::worker::WorkerSettings {
    inkingi_interop::worker::WorkerSettings {
        concurrency: config.worker.concurrency,
        poll_interval: Duration::from_millis(config.worker.poll_interval_ms),
        lease: Duration::from_secs(config.worker.lease_secs),
        retry: inkingi_domain::jobs::RetryPolicy {
            base: Duration::from_millis(config.worker.retry_base_ms),
            cap: Duration::from_secs(config.worker.retry_cap_secs),
            ..Default::default()
        },
        retain_succeeded: (config.worker.retain_succeeded_hours > 0)
            .then(|| Duration::from_secs(config.worker.retain_succeeded_hours * 3600)),
    }
}

/// A token cancelled on SIGINT (Ctrl-C) or SIGTERM (orchestrators, `kill`).
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch SIGTERM");
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested: finishing in-flight requests and jobs");
        t.cancel();
    });
    token
}
