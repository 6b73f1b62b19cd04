//! `sms`: plan the day's reminders now, set users' phones, list messages.

use chrono::Utc;
use inkingi_domain::identity::Username;
use inkingi_interop::sms::SmsSettings;
use inkingi_server::children::reminders::{local_day, plan};

use crate::cli::SmsCommand;
use crate::config::Config;

pub async fn run(config: &Config, cmd: SmsCommand) -> anyhow::Result<()> {
    let settings = match (&config.connectors.sms, &cmd) {
        (Some(c), _) => Some(c.settings().map_err(anyhow::Error::msg)?),
        // Without a gateway the worker could not send what is planned.
        (None, SmsCommand::SendDue) => anyhow::bail!(
            "no [connectors.sms] in the configuration: set its provider, url and credentials"
        ),
        (None, _) => None,
    };
    let store = super::connect_and_migrate(config).await?;
    let result = match cmd {
        SmsCommand::SendDue => send_due(&store, &settings.unwrap_or_default()).await,
        SmsCommand::Contact {
            username,
            phone,
            language,
        } => contact(&store, &username, phone, language).await,
        SmsCommand::List { since } => list(&store, since).await,
    };
    store.close().await;
    result
}

async fn send_due(store: &inkingi_store::Store, settings: &SmsSettings) -> anyhow::Result<()> {
    let s = plan(store, settings, Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("planning SMS reminders: {e}"))?;
    println!(
        "{}: {} health worker(s), {} child(ren) overdue; queued {} reminder(s), {} digest(s), \
         {} escalation(s), {} notification(s); {} planned already, {} capped, {} without a phone",
        s.day.map(|d| d.to_string()).unwrap_or_default(),
        s.health_workers,
        s.children_overdue,
        s.reminders,
        s.digests,
        s.escalations,
        s.notifications,
        s.existing,
        s.capped,
        s.no_phone
    );
    Ok(())
}

async fn contact(
    store: &inkingi_store::Store,
    username: &str,
    phone: Option<String>,
    language: Option<String>,
) -> anyhow::Result<()> {
    let name = Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?;
    let phone = phone
        .map(|p| inkingi_domain::registry::PhoneNumber::parse(&p).map(|p| p.as_str().to_string()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--phone: {e}"))?;
    if let Some(l) = &language {
        anyhow::ensure!(
            inkingi_interop::sms::catalogue::LANGUAGES.contains(&l.as_str()),
            "--language '{l}': expected rw, en or fr"
        );
    }
    if !store
        .sms()
        .set_user_contact(&name, phone.as_deref(), language.as_deref())
        .await?
    {
        anyhow::bail!("no user '{username}'");
    }
    println!("{username}: contact updated");
    Ok(())
}

async fn list(
    store: &inkingi_store::Store,
    since: Option<chrono::NaiveDate>,
) -> anyhow::Result<()> {
    let day = since.unwrap_or_else(|| local_day(Utc::now()));
    for m in store.sms().since(day).await? {
        println!("{}", serde_json::to_string(&m)?);
    }
    Ok(())
}
