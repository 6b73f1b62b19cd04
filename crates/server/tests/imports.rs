//! Bulk import through the API on every configured backend: a multipart upload is accepted at
//! once, a worker imports it in the background, and its progress, summary and error report are
//! readable; only a national scope may import.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{add_user, token};
use inkingi_domain::identity::Role;
use inkingi_interop::worker::{run, WorkerSettings};
use inkingi_testkit::{databases, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn files(households: u64) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let config = inkingi_synth::GenerateConfig::new(households, 7);
    inkingi_synth::generate(&config, dir.path(), &|_| {}).unwrap();
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    (read("households.csv"), read("members.csv"))
}

fn form(households: Vec<u8>, members: Vec<u8>) -> Form {
    Form::new()
        .text("source", "partner-x")
        .part(
            "households",
            Part::bytes(households).file_name("households.csv"),
        )
        .part("members", Part::bytes(members).file_name("members.csv"))
}

#[tokio::test]
async fn an_uploaded_registry_is_imported_by_a_worker() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "national", Role::NationalOfficer, "national").await;
        add_user(&app, "district", Role::DistrictOfficer, "11").await;
        let national = token(&app, "national", &["read", "write", "purpose:registration"]).await;
        let district = token(&app, "district", &["read", "write", "purpose:registration"]).await;
        let (hh, mm) = files(40);
        // A bad row in members.csv: its household is rejected and reported, the rest imported.
        let mut members = String::from_utf8(mm).unwrap();
        let second_line_start = members.find('\n').unwrap() + 1;
        let bad = members[second_line_start..]
            .replacen(",F,", ",X,", 1)
            .replacen(",M,", ",X,", 1);
        members.replace_range(second_line_start.., &bad);

        let refused = app
            .client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&district)
            .multipart(form(hh.clone(), members.clone().into_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403);

        let res = app
            .client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&national)
            .multipart(form(hh, members.into_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 202, "{}", res.text().await.unwrap());
        let started: Value = res.json().await.unwrap();
        assert_eq!(started["status"], "queued");
        let id = started["id"].as_str().unwrap().to_string();

        let stop = CancellationToken::new();
        let settings = WorkerSettings {
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        };
        let worker = tokio::spawn(run(app.store.clone(), settings, stop.clone()));
        let mut done = Value::Null;
        for _ in 0..600 {
            let got: Value = app
                .client
                .get(app.url(&format!("/api/v1/imports/{id}")))
                .bearer_auth(&national)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if got["status"] == "done" || got["status"] == "failed" {
                done = got;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.cancel();
        worker.await.unwrap().unwrap();
        assert_eq!(done["status"], "done", "{done}");
        assert!(
            done["summary"].as_str().unwrap().contains("households"),
            "{done}"
        );

        let report = app
            .client
            .get(app.url(&format!("/api/v1/imports/{id}/errors")))
            .bearer_auth(&national)
            .header("x-purpose-of-use", "registration")
            .send()
            .await
            .unwrap();
        assert_eq!(report.status().as_u16(), 200);
        let csv = report.text().await.unwrap();
        assert!(
            csv.lines()
                .any(|l| l.contains("members.csv") && l.contains(",sex,")),
            "{csv}"
        );

        let list: Value = app
            .client
            .get(app.url("/api/v1/households?limit=100"))
            .bearer_auth(&national)
            .header("x-purpose-of-use", "registration")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = list["households"].as_array().unwrap().len();
        assert!((30..40).contains(&n), "{n} households imported: {list}");
    }
}
