//! DCI authorisation and message signatures over real HTTP on every backend: the client
//! credentials token endpoint, access tokens accepted by the DCI API and ended with their API
//! token, the JWKS that verifies them, signed messages from partners verified (and required
//! when configured), signed answers, and X-Road headers kept in the audit log.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, Utc};
use common::*;
use inkingi_domain::audit::ChainVerifier;
use inkingi_domain::identity::Role;
use inkingi_interop::dci::signing::{self, KeyPair, MessageSigner, PublicKey, SenderKeys};
use inkingi_server::auth::jwt;
use inkingi_server::ServerSettings;
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const TOKEN: &str = "/dci/oauth2/client/token";
const SYNC: &str = "/dci/registry/sync/search";

fn search(sender: &str) -> Value {
    json!({
        "signature": "",
        "header": {
            "version": "1.0.0",
            "message_id": Uuid::now_v7().to_string(),
            "message_ts": Utc::now().to_rfc3339(),
            "action": "search",
            "sender_id": sender,
            "total_count": 1,
            "is_msg_encrypted": false
        },
        "message": {"transaction_id": "T-1", "search_request": [{
            "reference_id": "r1",
            "timestamp": Utc::now().to_rfc3339(),
            "search_criteria": {"version": "1.0.0", "reg_type": "SOCIAL",
                "query_type": "idtype-value", "query": {"type": "UIN", "value": "1198580012340011"}}
        }]}
    })
}

async fn form(app: &TestApp, fields: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(TOKEN))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, bearer: &str, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn prefix(api_token: &str) -> &str {
    &api_token[..12]
}

#[tokio::test]
async fn client_credentials_give_access_tokens_that_end_with_their_api_token() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "dci.client", Role::DistrictOfficer, "11").await;
        let api = token(&app, "dci.client", &["read", "purpose:registration"]).await;

        // Refusals, in the RFC 6749 shape.
        let (s, b) = form(&app, &[("client_id", prefix(&api))]).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_request")),
            "[{db:?}] {b}"
        );
        let (s, b) = form(&app, &[("grant_type", "password")]).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("unsupported_grant_type")),
            "[{db:?}]"
        );
        let wrong = format!(
            "{}{}",
            &api[..api.len() - 1],
            if api.ends_with('x') { 'y' } else { 'x' }
        );
        let (s, b) = form(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", prefix(&api)),
                ("client_secret", &wrong),
            ],
        )
        .await;
        assert_eq!(
            (s, b["error"].as_str()),
            (401, Some("invalid_client")),
            "[{db:?}] {b}"
        );

        // The form, then HTTP Basic.
        let (s, b) = form(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", prefix(&api)),
                ("client_secret", &api),
                ("scope", "registry.search"),
            ],
        )
        .await;
        assert_eq!(s, 200, "[{db:?}] {b}");
        assert_eq!(b["token_type"], "bearer");
        assert_eq!(b["expires_in"], 900);
        let access = b["access_token"].as_str().unwrap().to_string();
        let res = app
            .client
            .post(app.url(TOKEN))
            .basic_auth(prefix(&api), Some(&api))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "[{db:?}]");
        assert_eq!(res.headers()["cache-control"], "no-store");

        // The published keys verify it, with the API token as subject.
        let keys = app.get_json("/dci/.well-known/jwks.json", 200).await;
        let keys = signing::public_keys(&keys).unwrap();
        let claims = jwt::verify(&access, &keys, "inkingi", Utc::now().timestamp(), 5).unwrap();
        assert_eq!(claims.sub, prefix(&api));
        assert_eq!(claims.scope.as_deref(), Some("registry.search"));

        // It works where the API token works, and is audited as the token's user.
        let (s, b) = post(&app, SYNC, &access, &search("sp-mis")).await;
        assert_eq!(s, 200, "[{db:?}] {b}");
        assert_eq!(b["header"]["action"], "on-search");

        // A token altered on the way is refused.
        let mut tampered = access.clone();
        tampered.insert(access.find('.').unwrap() + 3, 'A');
        let (s, _) = post(&app, SYNC, &tampered, &search("sp-mis")).await;
        assert_eq!(s, 401, "[{db:?}]");

        // Revoking the API token ends its access tokens at once.
        inkingi_server::auth::service::revoke_token(
            &app.store,
            &inkingi_server::auth::service::Actor::cli(),
            prefix(&api),
        )
        .await
        .unwrap();
        let (s, b) = post(&app, SYNC, &access, &search("sp-mis")).await;
        assert_eq!(s, 401, "[{db:?}] {b}");
        let (s, _) = form(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", prefix(&api)),
                ("client_secret", &api),
            ],
        )
        .await;
        assert_eq!(s, 401, "[{db:?}]");

        app.audit.flush().await.unwrap();
        let issued = app
            .store
            .audit()
            .query(
                &inkingi_domain::identity::AreaScope::national(),
                &inkingi_store::audit::AuditQuery {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.record.action == "auth.token_issue" && e.record.actor == "dci.client")
            .count();
        assert_eq!(issued, 2, "[{db:?}]");
        app.stop().await;
    }
}

/// A partner's key registered under its sender id, and the registry's own signing key.
fn signed_settings(partner: &KeyPair, require: bool) -> (ServerSettings, KeyPair) {
    let mut settings = ServerSettings::default();
    let ours = KeyPair::generate("inkingi-2026-11");
    let mut keys = SenderKeys::default();
    keys.add("sp-mis", partner.public());
    settings.dci.sender_keys = keys;
    settings.dci.require_signatures = require;
    settings.dci.signing_key = ours.clone();
    settings.dci.message_signer = Some(MessageSigner {
        sender_id: "inkingi".into(),
        key: ours.clone(),
        valid_for: Duration::minutes(10),
    });
    (settings, ours)
}

#[tokio::test]
async fn signed_messages_are_verified_required_and_answered_signed() {
    for db in databases().await {
        let partner = KeyPair::generate("spmis-1");
        let (settings, ours) = signed_settings(&partner, true);
        let app = TestApp::start_with(&db, settings).await;
        add_user(&app, "dci.client", Role::DistrictOfficer, "11").await;
        let api = token(&app, "dci.client", &["read", "purpose:registration"]).await;
        let signer = MessageSigner {
            sender_id: "sp-mis".into(),
            key: partner.clone(),
            valid_for: Duration::minutes(5),
        };

        // Unsigned: refused, since signatures are required.
        let (s, b) = post(&app, SYNC, &api, &search("sp-mis")).await;
        assert_eq!(s, 400, "[{db:?}] {b}");
        assert_eq!(
            b["message"]["error"]["code"], "err.signature.invalid",
            "[{db:?}] {b}"
        );

        // Signed: served, and the answer is signed with the key the JWKS publishes.
        let mut body = search("sp-mis");
        signer.sign(&mut body, Utc::now());
        let (s, answer) = post(&app, SYNC, &api, &body).await;
        assert_eq!(s, 200, "[{db:?}] {answer}");
        let published = app.get_json("/dci/.well-known/jwks.json", 200).await;
        let published = signing::public_keys(&published).unwrap();
        assert_eq!(published, vec![ours.public()]);
        let mut theirs = SenderKeys::default();
        theirs.add("inkingi", published[0].clone());
        let kid = signing::verify(&answer, &theirs, Utc::now(), Duration::seconds(30)).unwrap();
        assert_eq!(kid, "inkingi-2026-11");

        // Changed after signing, or signed by another key: refused, nothing recorded (the same
        // message id is still fresh afterwards).
        let mut body = search("sp-mis");
        signer.sign(&mut body, Utc::now());
        let mut changed = body.clone();
        changed["message"]["transaction_id"] = json!("T-2");
        let (s, b) = post(&app, SYNC, &api, &changed).await;
        assert_eq!(s, 400, "[{db:?}] {b}");
        assert!(
            b["message"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("does not match"),
            "{b}"
        );
        let mut forged = search("sp-mis");
        MessageSigner {
            key: KeyPair::generate("spmis-1"),
            ..signer.clone()
        }
        .sign(&mut forged, Utc::now());
        let (s, _) = post(&app, SYNC, &api, &forged).await;
        assert_eq!(s, 400, "[{db:?}]");
        let (s, b) = post(&app, SYNC, &api, &body).await;
        assert_eq!(s, 200, "[{db:?}] {b}");

        // The CRVS endpoints read their messages the same way.
        add_user(&app, "crvs.client", Role::NationalOfficer, "national").await;
        let crvs = token(&app, "crvs.client", &["write"]).await;
        let mut notify = search("sp-mis");
        notify["header"]["action"] = json!("notify");
        let (s, b) = post(&app, "/dci/crvs/notify", &crvs, &notify).await;
        assert_eq!(s, 400, "[{db:?}] {b}");
        assert_eq!(
            b["message"]["error"]["code"], "err.signature.invalid",
            "[{db:?}] {b}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn x_road_headers_are_kept_in_the_audit_log() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "auditor", Role::Auditor, "national").await;
        let api = token(&app, "auditor", &["audit"]).await;
        let res = app
            .client
            .get(app.url("/api/v1/audit?limit=5"))
            .bearer_auth(&api)
            .header("X-Road-Client", "RW/GOV/MINALOC/LODA-MIS")
            .header("X-Road-Id", "xr-\t7f3c")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "[{db:?}]");
        app.audit.flush().await.unwrap();
        let page: Value = bearer(&app, "/api/v1/audit?actor=auditor&limit=50", &api)
            .await
            .json()
            .await
            .unwrap();
        let entry = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["xroad_client"] == "RW/GOV/MINALOC/LODA-MIS")
            .unwrap_or_else(|| panic!("[{db:?}] {page}"))
            .clone();
        // The tab (a control character) was dropped before it reached the log.
        assert_eq!(entry["xroad_id"], "xr-7f3c", "[{db:?}]");

        // Entries with and without X-Road fields chain and verify alike.
        app.audit.flush().await.unwrap();
        let mut v = ChainVerifier::default();
        loop {
            let page = app
                .store
                .audit()
                .entries_after(v.head().seq, 1000)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            for e in page {
                v.check(&e.unwrap()).unwrap();
            }
        }
        assert!(v.head().seq >= 2, "[{db:?}]");
        app.stop().await;
    }
}

#[test]
fn a_jwks_key_reads_back_as_itself() {
    let k = KeyPair::generate("a");
    assert_eq!(
        PublicKey::from_jwk(&k.public().to_jwk()).unwrap(),
        k.public()
    );
}
