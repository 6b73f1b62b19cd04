//! `inkingi demo`: a working system on a fresh machine with one command.

use secrecy::ExposeSecret;

use crate::cli::ServeArgs;
use crate::config::Config;

pub async fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    // The demo serves plain HTTP on this machine; browsers drop Secure cookies there unless the
    // host is literally "localhost", so sign-in would not stick on 127.0.0.1.
    if config.listen.ip().is_loopback() {
        config.auth.cookie_secure = false;
    }
    let store = super::connect_and_migrate(&config).await?;
    let admin_password = super::users::ensure_demo_admin(&config, &store).await?;
    super::serve::serve_store(&config, args, store, |addr| {
        println!("Inkingi demo is running: open http://{addr}/ (Ctrl-C stops it)");
        match &admin_password {
            Some(pw) => println!(
                "sign in as 'admin' with the one-time password {} (shown only now; you will \
                 choose your own at first sign-in)",
                pw.expose_secret()
            ),
            None => println!(
                "sign in as 'admin' (created by an earlier demo run; \
                 `inkingi users reset-password admin` issues a new one-time password)"
            ),
        }
    })
    .await
}
