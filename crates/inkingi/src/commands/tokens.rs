//! `inkingi tokens …`: API tokens for machines and partners.

use inkingi_domain::identity::TokenScope;
use inkingi_server::auth::service::{self, Actor, AdminError};
use inkingi_store::identity::TokenInfo;
use secrecy::ExposeSecret;

use crate::cli::{TokensCommand, TokensCreateArgs};
use crate::config::Config;

pub async fn run(config: &Config, cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create(args) => create(config, args).await,
        TokensCommand::Revoke { id } => {
            let store = super::connect_and_migrate(config).await?;
            let r = service::revoke_token(&store, &Actor::cli(), &id).await;
            store.close().await;
            let t = r?;
            println!("revoked token {} of {}", t.prefix, t.username);
            Ok(())
        }
        TokensCommand::List => {
            let store = super::connect_and_migrate(config).await?;
            let r = store.identity().list_tokens().await;
            store.close().await;
            print_tokens(&r?);
            Ok(())
        }
    }
}

/// The token alone goes to standard output (so `T=$(inkingi tokens create …)` captures it);
/// the description goes to standard error.
async fn create(config: &Config, args: TokensCreateArgs) -> anyhow::Result<()> {
    let username = super::users::parse_username(&args.username)?;
    let scopes = args
        .scopes
        .iter()
        .map(|s| s.parse::<TokenScope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let area = if args.areas.is_empty() {
        None
    } else {
        Some(service::parse_scope(&args.areas)?)
    };
    let expires = args
        .expires_days
        .map(|d| chrono::Duration::days(i64::from(d)));
    if args.expires_days == Some(0) {
        return Err(AdminError::Invalid("--expires-days must be at least 1".into()).into());
    }
    let store = super::connect_and_migrate(config).await?;
    let r = service::create_token(&store, &Actor::cli(), &username, scopes, area, expires).await;
    store.close().await;
    let (info, token) = r?;
    eprintln!(
        "created token {} for {} (scopes {}, areas {}, {}); it is shown only now:",
        info.prefix,
        info.username,
        scopes_text(&info),
        info.area_scope,
        info.expires_at
            .map(|t| format!("expires {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_else(|| "no expiry".into())
    );
    println!("{}", token.expose_secret());
    Ok(())
}

fn scopes_text(t: &TokenInfo) -> String {
    t.scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn print_tokens(tokens: &[TokenInfo]) {
    println!(
        "{:<36} {:<12} {:<20} {:<10} {:<24} {:<17} {:<17} AREAS",
        "ID", "PREFIX", "USER", "STATUS", "SCOPES", "EXPIRES", "LAST USED"
    );
    let now = chrono::Utc::now();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| none.to_string())
    };
    for t in tokens {
        let status = if t.revoked_at.is_some() {
            "revoked"
        } else if t.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if t.user_disabled {
            "disabled"
        } else {
            "active"
        };
        println!(
            "{:<36} {:<12} {:<20} {:<10} {:<24} {:<17} {:<17} {}",
            t.id,
            t.prefix,
            t.username.as_str(),
            status,
            scopes_text(t),
            when(t.expires_at, "never"),
            when(t.last_used_at, "never"),
            t.area_scope
        );
    }
    println!("{} token(s)", tokens.len());
}
