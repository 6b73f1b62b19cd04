//! `inkingi export`: an area's households and members as CSV files in the import format.

use std::fs::File;
use std::io::BufWriter;

use anyhow::Context;
use indicatif::ProgressBar;
use inkingi_domain::areas::AreaCode;
use inkingi_interop::registry_io::export::export_area;

use crate::cli::ExportArgs;
use crate::config::Config;

pub async fn run(config: &Config, args: &ExportArgs) -> anyhow::Result<()> {
    let area = if args.area.eq_ignore_ascii_case("national") {
        String::new()
    } else {
        let code = AreaCode::parse(&args.area).map_err(|e| {
            inkingi_server::auth::service::AdminError::Invalid(format!("--area: {e}"))
        })?;
        code.as_str().to_string()
    };
    let store = super::connect_and_migrate(config).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let create = |name: &str| {
        let path = args.out.join(name);
        File::create(&path)
            .map(BufWriter::new)
            .with_context(|| format!("creating {}", path.display()))
    };
    let started = std::time::Instant::now();
    let bar = ProgressBar::new_spinner();
    let mut progress = |n: u64| bar.set_message(format!("{n} households"));
    let summary = export_area(
        &store,
        &area,
        create("households.csv")?,
        create("members.csv")?,
        &mut progress,
    )
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "exported {} households and {} people to {} in {:.1} s ({:.0} rows/s)",
        summary.households,
        summary.people,
        args.out.display(),
        secs,
        (summary.households + summary.people) as f64 / secs.max(1e-9)
    );
    store.close().await;
    Ok(())
}
