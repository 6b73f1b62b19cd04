//! `inkingi users …`: accounts, roles and area scopes.

use std::io::BufRead;

use anyhow::Context;
use inkingi_domain::identity::{AreaScope, Role, Username};
use inkingi_server::auth::service::{self, Actor, AdminError};
use inkingi_server::auth::Passwords;
use inkingi_store::identity::User;
use inkingi_store::Store;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::{UsersAddArgs, UsersCommand};
use crate::config::Config;

pub async fn run(config: &Config, cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Add(args) => add(config, args).await,
        UsersCommand::List => {
            let store = super::connect_and_migrate(config).await?;
            let users = store.identity().list_users().await;
            store.close().await;
            print_users(&users?);
            Ok(())
        }
        UsersCommand::Disable { username } => set_disabled(config, &username, true).await,
        UsersCommand::Enable { username } => set_disabled(config, &username, false).await,
        UsersCommand::ResetPassword { username } => reset_password(config, &username).await,
    }
}

pub(crate) fn parse_username(s: &str) -> Result<Username, AdminError> {
    Username::parse(s).map_err(|e| AdminError::Invalid(e.to_string()))
}

fn parse_role(s: &str) -> Result<Role, AdminError> {
    s.parse()
        .map_err(|e: inkingi_domain::identity::UnknownRole| AdminError::Invalid(e.to_string()))
}

/// Arguments are checked before the database is touched, so a typo costs nothing.
async fn add(config: &Config, args: UsersAddArgs) -> anyhow::Result<()> {
    let username = parse_username(&args.username)?;
    let role = parse_role(&args.role)?;
    let scope = service::parse_scope(&args.areas)?;
    role.check_scope(&scope)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let password = if args.password_stdin {
        Some(read_password()?)
    } else {
        None
    };
    let store = super::connect_and_migrate(config).await?;
    let result = create(config, &store, username, role, scope, password).await;
    store.close().await;
    let (user, generated) = result?;
    println!(
        "created user {} (role {}, areas {})",
        user.username, user.role, user.scope
    );
    match generated {
        // Machine clients never sign in; their random password stays unknown to everyone.
        Some(_) if user.role == Role::MachineClient => println!(
            "machine clients use API tokens: inkingi tokens create --username {}",
            user.username
        ),
        Some(pw) => println!("one-time password (shown only now): {}", pw.expose_secret()),
        None => {}
    }
    Ok(())
}

async fn create(
    config: &Config,
    store: &Store,
    username: Username,
    role: Role,
    scope: AreaScope,
    password: Option<SecretString>,
) -> anyhow::Result<(User, Option<SecretString>)> {
    if let Some(note) = service::check_areas_exist(store, &scope).await? {
        eprintln!("note: {note}");
    }
    let passwords = Passwords::new(config.auth.argon2())?;
    let made = service::create_user(
        store,
        &passwords,
        &Actor::cli(),
        username,
        role,
        scope,
        password,
    )
    .await?;
    Ok(made)
}

fn read_password() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return Err(AdminError::Invalid("no password on standard input".into()).into());
    }
    Ok(SecretString::from(pw))
}

async fn set_disabled(config: &Config, username: &str, disabled: bool) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    let store = super::connect_and_migrate(config).await?;
    let r = service::set_disabled(&store, &Actor::cli(), &username, disabled).await;
    store.close().await;
    r?;
    let what = if disabled { "disabled" } else { "enabled" };
    println!("{what} user {username}");
    Ok(())
}

async fn reset_password(config: &Config, username: &str) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    let passwords = Passwords::new(config.auth.argon2())?;
    let store = super::connect_and_migrate(config).await?;
    let r = service::reset_password(&store, &passwords, &Actor::cli(), &username).await;
    store.close().await;
    let pw = r?;
    println!("reset the password of {username}; their sessions have ended");
    println!(
        "one-time password (shown only now; to be changed at sign-in): {}",
        pw.expose_secret()
    );
    Ok(())
}

fn print_users(users: &[User]) {
    println!(
        "{:<24} {:<24} {:<10} {:<20} AREAS",
        "USERNAME", "ROLE", "STATUS", "LAST SIGN-IN"
    );
    let now = chrono::Utc::now();
    for u in users {
        let status = if u.disabled {
            "disabled"
        } else if u.locked_until.is_some_and(|t| t > now) {
            "locked"
        } else {
            "active"
        };
        let last = u
            .last_login_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<24} {:<24} {:<10} {:<20} {}",
            u.username, u.role, status, last, u.scope
        );
    }
    println!("{} user(s)", users.len());
}

/// For `inkingi demo`: creates `admin` (system administrator, national scope) unless it exists,
/// returning its one-time password when it was just created.
pub async fn ensure_demo_admin(
    config: &Config,
    store: &Store,
) -> anyhow::Result<Option<SecretString>> {
    ensure_demo_user(config, store, "admin", Role::SystemAdmin).await
}

/// Creates a demo user with a national scope unless one of that name exists; returns its
/// one-time password when it was created.
pub async fn ensure_demo_user(
    config: &Config,
    store: &Store,
    name: &str,
    role: Role,
) -> anyhow::Result<Option<SecretString>> {
    let username = parse_username(name)?;
    if store.identity().user_by_name(&username).await?.is_some() {
        return Ok(None);
    }
    let passwords = Passwords::new(config.auth.argon2())?;
    let (_, pw) = service::create_user(
        store,
        &passwords,
        &Actor::cli(),
        username,
        role,
        AreaScope::national(),
        None,
    )
    .await?;
    Ok(pw)
}
