//! `inkingi generate`: a synthetic national registry in the import CSV format.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use inkingi_synth::{generate, GenerateConfig};

use crate::cli::GenerateArgs;

pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let config = GenerateConfig {
        households: args.households,
        seed: args.seed,
        duplicate_share: args.duplicates,
        child_id_share: args.child_id_share,
        as_of: args.as_of.unwrap_or_else(GenerateConfig::default_as_of),
    };
    let bar = ProgressBar::new(config.households);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} households ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    let started = Instant::now();
    let out = args.out.clone();
    // CPU-bound work on its own threads (rayon), off the async runtime.
    let summary = tokio::task::spawn_blocking({
        let bar = bar.clone();
        move || generate(&config, &out, &|done| bar.set_position(done))
    })
    .await??;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generated {} households, {} people ({} injected duplicates) in {:.1} s ({:.0} rows/s, {:.0} MB) into {}",
        summary.households,
        summary.people,
        summary.duplicates,
        secs,
        (summary.households + summary.people) as f64 / secs.max(1e-9),
        summary.bytes as f64 / 1e6,
        args.out.display()
    );
    Ok(())
}
