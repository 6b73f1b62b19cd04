//! `inkingi import`: the command-line face of [`inkingi_interop::registry_io::import`].

use std::fs::File;
use std::io::BufWriter;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use inkingi_interop::registry_io::import::{import_registry, ImportOptions, ImportProgress};

use crate::cli::ImportArgs;
use crate::config::Config;

pub async fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let open =
        |p: &std::path::Path| File::open(p).with_context(|| format!("opening {}", p.display()));
    let households = open(&args.households)?;
    let members = open(&args.members)?;
    let total = households.metadata().map(|m| m.len()).unwrap_or(0);
    let report = File::create(&args.errors)
        .with_context(|| format!("creating {}", args.errors.display()))?;
    let mut opts = ImportOptions::new(args.source.clone());
    opts.batch = args.batch as usize;
    // An operator's load: on an empty registry the random-order indexes are rebuilt at the end.
    opts.defer_indexes = true;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {percent:>3}% households.csv  {msg} ({elapsed}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    let mut on_progress = |p: &ImportProgress| {
        bar.set_position(p.bytes);
        bar.set_message(format!(
            "{} households, {} people, {} rejected",
            p.households_written, p.people_written, p.households_rejected
        ));
    };
    let summary = import_registry(
        &store,
        std::io::BufReader::with_capacity(1 << 20, households),
        std::io::BufReader::with_capacity(1 << 20, members),
        BufWriter::new(report),
        &opts,
        &mut on_progress,
    )
    .await?;
    bar.finish_and_clear();
    println!("{summary}");
    if summary.error_rows > 0 {
        println!("rejected rows are listed in {}", args.errors.display());
    }
    store.close().await;
    Ok(())
}
