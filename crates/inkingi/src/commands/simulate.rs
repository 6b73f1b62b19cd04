//! `simulate`: simulators of outside systems, serving until SIGINT/SIGTERM.

use std::time::Duration;

use inkingi_interop::simulate::subscriber::{FaultPlan, Subscriber};

use crate::cli::{SimulateCommand, SubscriberArgs};

pub async fn run(cmd: SimulateCommand) -> anyhow::Result<()> {
    match cmd {
        SimulateCommand::Subscriber(args) => subscriber(args).await,
    }
}

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
