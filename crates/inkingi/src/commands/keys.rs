//! `inkingi keys`: the Ed25519 keys of the DCI interfaces, and loading them from `[dci]`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use inkingi_interop::dci::signing::{self, KeyPair, MessageSigner, PublicKey, SenderKeys};
use inkingi_server::dci::DciSettings;
use serde_json::Value;

use crate::cli::KeysCommand;
use crate::config::Config;

pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Generate { kid, out } => generate(&kid, &out),
        KeysCommand::Public { file } => {
            let key = read_private(&file)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&signing::jwks([&key.public()]))?
            );
            Ok(())
        }
    }
}

/// Writes a new private JWK readable by its owner only, and prints the public JWK Set to hand
/// to partners.
fn generate(kid: &str, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !kid.is_empty() && kid.len() <= 128,
        "--kid: 1 to 128 characters"
    );
    let key = KeyPair::generate(kid);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(out)
        .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
    writeln!(
        file,
        "{}",
        serde_json::to_string_pretty(&key.to_private_jwk())?
    )?;
    eprintln!(
        "wrote the private key {} to {}; set dci.signing_key_file to it on every node",
        key.kid(),
        out.display()
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&signing::jwks([&key.public()]))?
    );
    Ok(())
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

fn read_private(path: &Path) -> anyhow::Result<KeyPair> {
    KeyPair::from_jwk(&read_json(path)?).with_context(|| format!("{}", path.display()))
}

fn read_public(path: &Path) -> anyhow::Result<Vec<PublicKey>> {
    signing::public_keys(&read_json(path)?).with_context(|| format!("{}", path.display()))
}

/// The DCI settings of `[dci]`, keys read from their files; every error names its key.
pub fn dci_settings(config: &Config) -> anyhow::Result<DciSettings> {
    let d = &config.dci;
    let mut settings = DciSettings {
        registry_id: d.registry_id.clone(),
        token_ttl: chrono::Duration::seconds(d.token_ttl_secs as i64),
        require_signatures: d.require_signatures,
        ..DciSettings::default()
    };
    if let Some(path) = &d.signing_key_file {
        settings.signing_key = read_private(path).context("dci.signing_key_file")?;
        settings.message_signer = message_signer(config)?;
    } else {
        tracing::warn!(
            "dci.signing_key_file is not set: access tokens are signed with a key of this \
             process only and DCI messages go unsigned"
        );
    }
    for path in &d.previous_key_files {
        settings
            .previous_keys
            .extend(read_public(path).context("dci.previous_key_files")?);
    }
    settings.sender_keys = sender_keys(config)?;
    Ok(settings)
}

fn sender_keys(config: &Config) -> anyhow::Result<SenderKeys> {
    let mut keys = SenderKeys::default();
    for (sender, path) in &config.dci.sender_keys {
        for key in read_public(path).with_context(|| format!("dci.sender_keys.{sender}"))? {
            keys.add(sender.clone(), key);
        }
    }
    Ok(keys)
}

/// What signs outgoing DCI messages (callbacks, notifications), when a key is configured.
pub fn message_signer(config: &Config) -> anyhow::Result<Option<MessageSigner>> {
    let Some(path) = &config.dci.signing_key_file else {
        return Ok(None);
    };
    Ok(Some(MessageSigner {
        sender_id: config.dci.registry_id.clone(),
        key: read_private(path).context("dci.signing_key_file")?,
        valid_for: chrono::Duration::minutes(10),
    }))
}
