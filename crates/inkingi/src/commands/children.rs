//! `children import-school`: the school feed from a CSV file, through the same checks,
//! linkage and storage as its API.

use inkingi_domain::identity::Username;
use inkingi_server::auth::Principal;
use inkingi_server::children::feeds::{read_csv, receive, Feed};

use crate::cli::ChildrenCommand;
use crate::config::Config;

pub async fn run(config: &Config, cmd: ChildrenCommand) -> anyhow::Result<()> {
    match cmd {
        ChildrenCommand::ImportSchool { file, source } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let records = read_csv(Feed::School, &bytes).map_err(refusal)?;
            let store = super::connect_and_migrate(config).await?;
            // Acts nationally, like an import; audit entries say `token:connector:school-import`.
            let principal = Principal::connector(Username::parse("school-import")?);
            let result = receive(&store, &principal, Feed::School, Some(&source), &records).await;
            store.close().await;
            let s = result.map_err(refusal)?;
            println!(
                "{} row(s): {} enrolment(s) stored, {} already stored; {} child(ren) linked to \
                 the registry, {} in the review queue",
                s.records, s.created, s.existing, s.linked, s.in_review
            );
            Ok(())
        }
    }
}

/// A refusal with every row, field and reason, one per line.
fn refusal(e: inkingi_server::error::ApiError) -> anyhow::Error {
    let mut text = format!("refused, nothing stored: {}", e.detail);
    for f in &e.errors {
        text.push_str(&format!("\n  {}: {}", f.field, f.reason));
    }
    anyhow::anyhow!(text)
}
