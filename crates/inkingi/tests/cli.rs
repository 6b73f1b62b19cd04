//! The real binary, as an operator runs it.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{inkingi, run};

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(inkingi(dir.path()).arg("--version"));
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    let (code, out, _) = run(inkingi(dir.path()).arg("--help"));
    assert_eq!(code, 0);
    for cmd in ["serve", "worker", "migrate", "demo", "jobs"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    let (_, out, _) = run(inkingi(dir.path()).args(["serve", "--help"]));
    assert!(
        out.contains("INKINGI_LISTEN") && out.contains("INKINGI_DATABASE_URL"),
        "{out}"
    );
}

#[test]
fn bad_configuration_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inkingi.toml");
    std::fs::write(&file, "db_max_connections = \"lots\"\n").unwrap();
    let (code, _, err) = run(inkingi(dir.path())
        .arg("--config")
        .arg(&file)
        .arg("migrate"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("db_max_connections"), "{err}");

    let (code, _, err) = run(inkingi(dir.path())
        .env("INKINGI_WORKER__CONCURRENCY", "-3")
        .arg("migrate"));
    assert_eq!(code, 2, "{err}");
    assert!(err.to_lowercase().contains("concurrency"), "{err}");

    let (code, _, err) = run(inkingi(dir.path())
        .env("INKINGI_LISTEN", "not-an-address")
        .arg("serve"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--listen"), "{err}");

    let (code, _, err) =
        run(inkingi(dir.path()).args(["--database-url", "mysql://root@localhost/x", "migrate"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("database_url"), "{err}");

    let (code, _, err) = run(inkingi(dir.path()).args(["--config", "missing.toml", "migrate"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn unreachable_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let (code, _, err) = run(inkingi(dir.path()).args([
        "--database-url",
        "postgres://inkingi:s3cret@127.0.0.1:9/inkingi",
        "migrate",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(!err.contains("s3cret"), "password leaked: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn migrate_is_idempotent_on_the_default_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(inkingi(dir.path()).arg("migrate"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migrated sqlite"), "{out}");
    assert!(dir.path().join("inkingi-data/inkingi.db").exists());
    let (code, out, err) = run(inkingi(dir.path()).arg("migrate"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 migration(s) applied"), "{out}");
}

/// `inkingi serve` on a free port, with `args` before `serve`; returns the child and its URL.
fn spawn_serve(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    let mut child = inkingi(dir)
        .args(args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("a line").unwrap();
    let url = line
        .strip_prefix("inkingi listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    assert!(!url.ends_with(":0"), "{url}");
    (child, url)
}

fn get_json(url: &str) -> serde_json::Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// SIGTERM, then the process must end cleanly within 20 s.
fn stop(mut child: std::process::Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_on_port_zero_reports_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = spawn_serve(dir.path(), &[]);
    assert_eq!(get_json(&format!("{url}/healthz"))["status"], "ok");
    stop(child);
}

#[test]
fn signing_keys_are_generated_private_and_published_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dci-signing.jwk");
    let (code, out, err) = run(inkingi(dir.path())
        .args(["keys", "generate", "--kid", "2026-11", "--out"])
        .arg(&key));
    assert_eq!(code, 0, "{err}");
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["keys"][0]["kid"], "2026-11");
    assert!(
        printed["keys"][0].get("d").is_none(),
        "private part printed: {out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwritten.
    let (code, _, err) = run(inkingi(dir.path())
        .args(["keys", "generate", "--kid", "x", "--out"])
        .arg(&key));
    assert_ne!(code, 0);
    assert!(err.contains("must not exist"), "{err}");
    let (code, again, _) = run(inkingi(dir.path()).args(["keys", "public"]).arg(&key));
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again).unwrap(),
        printed
    );

    let config = dir.path().join("inkingi.toml");
    std::fs::write(
        &config,
        format!("[dci]\nsigning_key_file = {:?}\n", key.to_str().unwrap()),
    )
    .unwrap();
    let (child, url) = spawn_serve(dir.path(), &["--config", config.to_str().unwrap()]);
    let served = get_json(&format!("{url}/dci/.well-known/jwks.json"));
    stop(child);
    assert_eq!(served, printed);

    // A key file that is not a key stops the server with the setting's name.
    std::fs::write(key.with_extension("bad"), "{}").unwrap();
    std::fs::write(
        &config,
        format!(
            "[dci]\nsigning_key_file = {:?}\n",
            key.with_extension("bad").to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, _, err) = run(inkingi(dir.path()).args([
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("dci.signing_key_file"), "{err}");
}

#[test]
fn generate_writes_a_registry_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["generate", "--households", "60", "--seed", "3", "--out"];
    let (code, out, err) = run(inkingi(dir.path()).args(args).arg("a"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("generated ") && out.contains(" people ") && out.contains("rows/s"),
        "{out}"
    );
    run(inkingi(dir.path()).args(args).arg("b"));
    for file in ["households.csv", "members.csv", "truth.csv"] {
        let a = std::fs::read(dir.path().join("a").join(file)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(file)).unwrap();
        assert!(a.len() > 100, "{file} is nearly empty");
        assert_eq!(a, b, "{file} differs for the same seed");
    }
    assert!(
        !dir.path().join("inkingi-data").exists(),
        "no database is created"
    );

    let (code, _, err) = run(inkingi(dir.path()).args([
        "generate",
        "--households",
        "5",
        "--duplicates",
        "2",
        "--out",
        "c",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--duplicates"), "{err}");
    let (code, _, err) = run(inkingi(dir.path()).args([
        "generate",
        "--households",
        "5",
        "--duplicates",
        "0.9",
        "--out",
        "c",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("duplicate share"), "{err}");
}

/// `simulate id --households N --seed S` holds the people `generate` writes with the same
/// seed, and answers DCI searches for their national IDs.
#[test]
fn the_id_registry_simulator_holds_the_generated_people() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    let (code, _, err) = run(inkingi(dir.path())
        .args(["generate", "--households", "30", "--seed", "7", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{err}");
    let mut members = csv::Reader::from_path(out.join("members.csv")).unwrap();
    let headers = members.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (nid, given) = (col("national_id"), col("given_name"));
    let adult = members
        .records()
        .map(|r| r.unwrap())
        .find(|r| !r[nid].is_empty())
        .expect("an adult with a national ID");

    let mut child = inkingi(dir.path())
        .args(["simulate", "id", "--households", "30", "--seed", "7"])
        .args(["--mismatch-share", "0", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let addr = first.rsplit("http://").next().unwrap().to_string();
    assert!(first.contains("holding"), "{first}");

    let search = |value: &str| {
        serde_json::json!({
            "header": {"message_id": "m1", "message_ts": "2026-11-22T10:00:00.000Z",
                "action": "search", "sender_id": "test", "total_count": 1},
            "message": {"transaction_id": "t1", "search_request": [{"reference_id": "r1",
                "search_criteria": {"query_type": "idtype-value",
                    "query": {"type": "UIN", "value": value}}}]}
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ask = |value: &str| -> serde_json::Value {
        rt.block_on(async {
            reqwest::Client::new()
                .post(format!("http://{addr}/registry/sync/search"))
                .json(&search(value))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    let found = ask(&adult[nid]);
    let record = &found["message"]["search_response"][0]["data"]["reg_records"][0];
    assert_eq!(record["name"]["given_name"], adult[given], "{found}");
    let unknown = ask("1199970000000000");
    assert_eq!(
        unknown["message"]["search_response"][0]["data"]["reg_records"],
        serde_json::json!([]),
        "{unknown}"
    );

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("2 request(s): 1 found, 1 not found")),
        "{rest:?}"
    );
}

/// `simulate crvs --people FILE` registers births and deaths of the file's people on demand,
/// answers DCI searches for the births it registered, and sums up on SIGINT.
#[test]
fn the_crvs_simulator_emits_events_of_the_given_people() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    let (code, _, err) = run(inkingi(dir.path())
        .args(["generate", "--households", "30", "--seed", "7", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{err}");
    let mut child = inkingi(dir.path())
        .args(["simulate", "crvs", "--seed", "7", "--listen", "127.0.0.1:0"])
        .arg("--people")
        .arg(out.join("members.csv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let addr = first.rsplit("http://").next().unwrap().to_string();
    assert!(first.contains("CRVS simulator"), "{first}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let post = |path: &str, body: serde_json::Value| -> (u16, serde_json::Value) {
        rt.block_on(async {
            let res = reqwest::Client::new()
                .post(format!("http://{addr}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(text.into()))
        })
    };
    let (s, emitted) = post("/admin/emit", serde_json::json!({"births": 3, "deaths": 2}));
    assert_eq!(s, 200, "{emitted}");
    let events = emitted["events"].as_array().unwrap();
    assert_eq!(events.len(), 5, "{emitted}");
    let birth = &events[0]["item"]["data"]["reg_records"][0];
    let brn = birth["identifier"][0]["identifier_value"].as_str().unwrap();
    let (s, found) = post(
        "/registry/sync/search",
        serde_json::json!({
            "header": {"message_id": "m1", "message_ts": "2026-11-22T10:00:00.000Z",
                "action": "search", "sender_id": "test", "total_count": 1},
            "message": {"transaction_id": "t1", "search_request": [{"reference_id": "r1",
                "search_criteria": {"query_type": "idtype-value",
                    "query": {"type": "BRN", "value": brn}}}]}
        }),
    );
    assert_eq!(s, 200, "{found}");
    let record = &found["message"]["search_response"][0]["data"]["reg_records"][0];
    assert_eq!(record["name"], birth["name"], "{found}");
    let (s, _) = post("/admin/emit", serde_json::json!({"births": "many"}));
    assert_eq!(s, 400);

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l.starts_with("5 event(s)")), "{rest:?}");
}
