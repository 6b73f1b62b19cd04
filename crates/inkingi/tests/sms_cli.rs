//! `inkingi simulate sms` and `inkingi sms …` as an operator runs them.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

mod common;

use common::{inkingi, run};

#[test]
fn the_simulator_and_the_sms_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = inkingi(dir.path())
        .args(["simulate", "sms", "--protocol", "africastalking"])
        .args([
            "--username",
            "inkingi",
            "--secret",
            "k3y",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://"), "{first}");

    // It speaks Africa's Talking: a message sent with the key is taken and listed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, answer, listed, kannel) = rt.block_on(async {
        let c = reqwest::Client::new();
        let res = c
            .post(format!("{url}/version1/messaging"))
            .header("apiKey", "k3y")
            .header("Accept", "application/json")
            .form(&[
                ("username", "inkingi"),
                ("to", "+250788123456"),
                ("message", "Muraho"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let answer: serde_json::Value = res.json().await.unwrap();
        let listed: serde_json::Value = c
            .get(format!("{url}/messages"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kannel = c
            .get(format!(
                "{url}/cgi-bin/sendsms?username=inkingi&password=k3y&to=1&text=x"
            ))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        (status, answer, listed, kannel)
    });
    assert_eq!(status, 201, "{answer}");
    let r = &answer["SMSMessageData"]["Recipients"][0];
    assert_eq!(
        (r["statusCode"].as_u64(), r["status"].as_str()),
        (Some(101), Some("Success"))
    );
    assert_eq!(listed[0]["text"], "Muraho");
    assert_eq!(listed[0]["id"], r["messageId"]);
    // Only the chosen protocol is served.
    assert_eq!(kannel, 404);

    // Planning needs a gateway.
    let (code, _, err) = run(inkingi(dir.path()).args(["sms", "send-due"]));
    assert_ne!(code, 0);
    assert!(err.contains("[connectors.sms]"), "{err}");
    let config = dir.path().join("inkingi.toml");
    let write = |quiet: &str| {
        std::fs::write(
            &config,
            format!(
                "[connectors.sms]\nprovider = \"africastalking\"\nurl = \"{url}\"\n\
                 username = \"inkingi\"\napi_key = \"k3y\"\nquiet_hours = \"{quiet}\"\n"
            ),
        )
        .unwrap();
    };
    write("late");
    let (code, _, err) = run(inkingi(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["sms", "send-due"]));
    assert_ne!(code, 0);
    assert!(err.contains("connectors.sms.quiet_hours"), "{err}");

    // A community health worker's phone and language.
    let (code, _, err) = run(inkingi(dir.path()).args([
        "users",
        "add",
        "--username",
        "chw.a",
        "--role",
        "community_health_worker",
        "--area",
        "110101",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        run(inkingi(dir.path()).args(["sms", "contact", "chw.a", "--phone", "12345"]));
    assert_ne!(code, 0);
    assert!(err.contains("--phone"), "{err}");
    let (code, out, err) = run(inkingi(dir.path()).args([
        "sms",
        "contact",
        "chw.a",
        "--phone",
        "0788000111",
        "--language",
        "fr",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("chw.a"), "{out}");

    write("21:00-07:00");
    for _ in 0..2 {
        let (code, out, err) = run(inkingi(dir.path())
            .arg("--config")
            .arg(&config)
            .args(["sms", "send-due"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("1 health worker(s), 0 child(ren) overdue; queued 0 reminder(s)"),
            "{out}"
        );
    }
    let _ = sim.kill();
    let _ = sim.wait();
}
