//! The identity and audit commands, run as the real binary on both backends: users, tokens,
//! and `audit verify` against a chain tampered with by raw SQL.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};

use inkingi_store::BackendKind;
use inkingi_testkit::{databases, TestDb};
use sqlx::Connection;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn inkingi(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inkingi"));
    cmd.args(args)
        .current_dir(dir.path())
        .env("INKINGI_DATABASE_URL", &db.url)
        .env("INKINGI_LOG_LEVEL", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn ok(db: &TestDb, args: &[&str]) -> Run {
    let r = inkingi(db, args, None);
    assert_eq!(r.code, 0, "[{db:?}] {args:?}: {}{}", r.stdout, r.stderr);
    r
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line() {
    for db in databases().await {
        // Bad input is refused before anything is written, naming what is wrong.
        for (args, needle) in [
            (
                vec![
                    "users",
                    "add",
                    "--username",
                    "x.y",
                    "--role",
                    "king",
                    "--area",
                    "11",
                ],
                "unknown role 'king'",
            ),
            (
                vec![
                    "users",
                    "add",
                    "--username",
                    "x.y",
                    "--role",
                    "auditor",
                    "--area",
                    "11x",
                ],
                "invalid area code '11x'",
            ),
            (
                vec![
                    "users",
                    "add",
                    "--username",
                    "x.y",
                    "--role",
                    "district_officer",
                    "--area",
                    "national",
                ],
                "may not be scoped to national",
            ),
            (
                vec![
                    "users",
                    "add",
                    "--username",
                    "x.y",
                    "--role",
                    "sector_officer",
                    "--area",
                    "11",
                ],
                "may not be scoped to 11",
            ),
            (
                vec![
                    "users",
                    "add",
                    "--username",
                    "no",
                    "--role",
                    "auditor",
                    "--area",
                    "11",
                ],
                "invalid username",
            ),
        ] {
            let r = inkingi(&db, &args, None);
            assert_eq!(r.code, 2, "[{db:?}] {args:?}: {}", r.stderr);
            assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        }

        let r = ok(
            &db,
            &[
                "users",
                "add",
                "--username",
                "Grace.O",
                "--role",
                "district-officer",
                "--area",
                "11",
                "--area",
                "2301",
            ],
        );
        assert!(
            r.stdout
                .contains("created user grace.o (role district_officer, areas 11 2301)"),
            "{}",
            r.stdout
        );
        let pw_line = r
            .stdout
            .lines()
            .find(|l| l.contains("one-time password"))
            .unwrap();
        assert_eq!(pw_line.rsplit(' ').next().unwrap().len(), 20);

        let r = inkingi(
            &db,
            &[
                "users",
                "add",
                "--username",
                "grace.o",
                "--role",
                "auditor",
                "--area",
                "11",
            ],
            None,
        );
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("already taken"), "{}", r.stderr);

        let r = inkingi(
            &db,
            &[
                "users",
                "add",
                "--username",
                "hal",
                "--role",
                "auditor",
                "--area",
                "national",
                "--password-stdin",
            ],
            Some("short\n"),
        );
        assert_eq!(r.code, 2, "{}", r.stderr);
        let r = inkingi(
            &db,
            &[
                "users",
                "add",
                "--username",
                "hal",
                "--role",
                "auditor",
                "--area",
                "national",
                "--password-stdin",
            ],
            Some("a sufficiently long one\n"),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stdout.contains("one-time"));

        let r = ok(
            &db,
            &[
                "tokens",
                "create",
                "--username",
                "grace.o",
                "--scope",
                "read",
                "--scope",
                "purpose:registration",
                "--area",
                "1101",
                "--expires-days",
                "30",
            ],
        );
        let token = r.stdout.trim().to_string();
        assert!(token.starts_with("ink_") && token.len() == 52, "{token}");
        assert!(r.stderr.contains("areas 1101"), "{}", r.stderr);
        let r = inkingi(
            &db,
            &["tokens", "create", "--username", "grace.o", "--area", "12"],
            None,
        );
        assert_eq!(r.code, 2, "a token wider than its user: {}", r.stderr);
        let r = inkingi(
            &db,
            &[
                "tokens",
                "create",
                "--username",
                "grace.o",
                "--scope",
                "root",
            ],
            None,
        );
        assert_eq!(r.code, 2);
        assert!(
            r.stderr.contains("unknown token scope 'root'"),
            "{}",
            r.stderr
        );

        let r = ok(&db, &["tokens", "list"]);
        assert!(
            r.stdout.contains(&token[..12]) && r.stdout.contains("active"),
            "{}",
            r.stdout
        );
        assert!(
            !r.stdout.contains(&token),
            "the secret must never be listed"
        );
        ok(&db, &["tokens", "revoke", &token[..12]]);
        assert!(ok(&db, &["tokens", "list"]).stdout.contains("revoked"));
        let r = inkingi(&db, &["tokens", "revoke", &token[..12]], None);
        assert_ne!(r.code, 0);

        ok(&db, &["users", "disable", "grace.o"]);
        let r = ok(&db, &["users", "list"]);
        let line = r.stdout.lines().find(|l| l.starts_with("grace.o")).unwrap();
        assert!(line.contains("disabled"), "{line}");
        let r = inkingi(&db, &["users", "disable", "nobody.x"], None);
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains("no user named 'nobody.x'"),
            "{}",
            r.stderr
        );

        // Every change above is in the chain, which verifies.
        let r = ok(&db, &["audit", "verify"]);
        assert!(r.stdout.starts_with("audit chain intact: "), "{}", r.stdout);
        assert!(r.stdout.contains("entries/s"), "{}", r.stdout);
        let head = ok(&db, &["audit", "head"]).stdout;
        let (seq, hash) = head.trim().split_once(' ').unwrap();
        assert!(seq.parse::<i64>().unwrap() >= 5, "{head}");
        assert_eq!(hash.len(), 64);
        ok(&db, &["audit", "verify", "--anchor", hash]);
    }
}

/// Raw SQL on the database, as someone with direct access would run it.
async fn sql(db: &TestDb, statements: &[&str]) {
    match db.kind {
        BackendKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut c).await.unwrap();
            }
            c.close().await.unwrap();
        }
        BackendKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut c).await.unwrap();
            }
            c.close().await.unwrap();
        }
    }
}

fn drop_guards(kind: BackendKind) -> Vec<&'static str> {
    match kind {
        BackendKind::Sqlite => vec![
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        BackendKind::Postgres => vec!["ALTER TABLE audit_log DISABLE TRIGGER USER"],
    }
}

/// A fresh database with 20 entries in its chain.
async fn filled() -> Vec<TestDb> {
    let mut out = Vec::new();
    for db in databases().await {
        ok(&db, &["audit", "fill", "--count", "20"]);
        ok(&db, &["audit", "verify"]);
        out.push(db);
    }
    out
}

fn assert_broken_at(db: &TestDb, seq: i64, why: &str) {
    let r = inkingi(db, &["audit", "verify"], None);
    assert_eq!(r.code, 4, "[{db:?}] {why}: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains(&format!("audit chain broken at entry {seq}")),
        "[{db:?}] {why}: {}",
        r.stderr
    );
}

#[tokio::test]
async fn the_log_refuses_changes_unless_its_guards_are_dropped() {
    for db in filled().await {
        let attempt = |s: &'static str| {
            let db = &db;
            async move {
                match db.kind {
                    BackendKind::Sqlite => {
                        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                        sqlx::query(s).execute(&mut c).await.is_err()
                    }
                    BackendKind::Postgres => {
                        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                        sqlx::query(s).execute(&mut c).await.is_err()
                    }
                }
            }
        };
        assert!(
            attempt("UPDATE audit_log SET actor = 'x' WHERE seq = 1").await,
            "[{db:?}]"
        );
        assert!(
            attempt("DELETE FROM audit_log WHERE seq = 1").await,
            "[{db:?}]"
        );
        ok(&db, &["audit", "verify"]);
    }
}

#[tokio::test]
async fn verify_names_the_first_altered_entry() {
    for db in filled().await {
        let mut s = drop_guards(db.kind);
        s.push("UPDATE audit_log SET purpose = 'statistics' WHERE seq = 7");
        s.push("UPDATE audit_log SET actor = 'mallory' WHERE seq = 12");
        sql(&db, &s).await;
        assert_broken_at(&db, 7, "altered content");
    }
    // Rewriting the hash too does not help: the next entry no longer links to it.
    for db in filled().await {
        let mut s = drop_guards(db.kind);
        s.push("UPDATE audit_log SET hash = prev_hash WHERE seq = 9");
        sql(&db, &s).await;
        assert_broken_at(&db, 9, "altered hash");
    }
    // A row damaged so badly it does not decode is named too.
    for db in filled().await {
        let mut s = drop_guards(db.kind);
        s.push(match db.kind {
            BackendKind::Sqlite => "UPDATE audit_log SET hash = substr(hash, 1, 3) WHERE seq = 6",
            BackendKind::Postgres => {
                "UPDATE audit_log SET hash = substring(hash from 1 for 3) WHERE seq = 6"
            }
        });
        sql(&db, &s).await;
        assert_broken_at(&db, 6, "malformed row");
    }
}

#[tokio::test]
async fn verify_names_the_first_deleted_entry() {
    for db in filled().await {
        let mut s = drop_guards(db.kind);
        s.push("DELETE FROM audit_log WHERE seq = 5");
        sql(&db, &s).await;
        assert_broken_at(&db, 5, "deleted row");
    }
    // Removing the newest entry is caught against the recorded head.
    for db in filled().await {
        let mut s = drop_guards(db.kind);
        s.push("DELETE FROM audit_log WHERE seq = 20");
        sql(&db, &s).await;
        assert_broken_at(&db, 20, "deleted tail");
    }
}

#[tokio::test]
async fn verify_names_the_first_reordered_entry() {
    for db in filled().await {
        let mut s = drop_guards(db.kind);
        // Swap entries 4 and 11 by renumbering them.
        s.push("UPDATE audit_log SET seq = -4 WHERE seq = 4");
        s.push("UPDATE audit_log SET seq = 4 WHERE seq = 11");
        s.push("UPDATE audit_log SET seq = 11 WHERE seq = -4");
        sql(&db, &s).await;
        assert_broken_at(&db, 4, "reordered rows");
    }
}

#[tokio::test]
async fn a_truncated_chain_fails_against_its_anchor() {
    for db in filled().await {
        let head = ok(&db, &["audit", "head"]).stdout;
        let hash = head.trim().split_once(' ').unwrap().1.to_string();
        // Drop the last five entries and rewrite the head to match: only the anchor knows.
        let mut s = drop_guards(db.kind);
        s.push("DELETE FROM audit_log WHERE seq > 15");
        s.push(
            "UPDATE audit_head SET seq = 15, hash = (SELECT hash FROM audit_log WHERE seq = 15)",
        );
        sql(&db, &s).await;
        ok(&db, &["audit", "verify"]);
        let r = inkingi(&db, &["audit", "verify", "--anchor", &hash], None);
        assert_eq!(r.code, 4, "[{db:?}] {}", r.stderr);
        assert!(
            r.stderr.contains("anchored hash is not in the chain"),
            "{}",
            r.stderr
        );
    }
}

/// Area codes are checked for syntax always, and for existence once the admin hierarchy is
/// loaded (by `migrate`, from the areas reference data).
#[tokio::test]
async fn areas_must_exist_once_reference_data_is_loaded() {
    for db in databases().await {
        let store = db.store().await;
        let loaded = store
            .system()
            .reference_version("areas")
            .await
            .unwrap()
            .is_some();
        store.close().await;
        let args = [
            "users",
            "add",
            "--username",
            "kim.o",
            "--role",
            "district_officer",
            "--area",
            "99",
        ];
        let r = inkingi(&db, &args, None);
        if loaded {
            assert_eq!(r.code, 2, "[{db:?}] {}", r.stderr);
            assert!(r.stderr.contains("unknown area '99'"), "{}", r.stderr);
            ok(
                &db,
                &[
                    "users",
                    "add",
                    "--username",
                    "kim.o",
                    "--role",
                    "district_officer",
                    "--area",
                    "11",
                ],
            );
        } else {
            assert_eq!(r.code, 0, "[{db:?}] {}", r.stderr);
            assert!(
                r.stderr
                    .contains("only the syntax of the area codes was checked"),
                "{}",
                r.stderr
            );
        }
    }
}

/// The one-time password printed by a command, from its last line.
fn printed_password(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("one-time password"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no one-time password in {stdout}"))
        .to_string()
}

#[tokio::test]
async fn reset_password_issues_a_one_time_password() {
    for db in databases().await {
        let r = ok(
            &db,
            &[
                "users",
                "add",
                "--username",
                "rita.auditor",
                "--role",
                "auditor",
                "--area",
                "national",
            ],
        );
        let first = printed_password(&r.stdout);
        let store = db.store().await;
        let name = inkingi_domain::identity::Username::parse("rita.auditor").unwrap();
        let must_change = || async {
            let u = store.identity().user_by_name(&name).await.unwrap().unwrap();
            u.must_change_password
        };
        assert!(
            must_change().await,
            "[{db:?}] a generated password is one-time"
        );

        let r = ok(&db, &["users", "reset-password", "rita.auditor"]);
        let second = printed_password(&r.stdout);
        assert_eq!(second.len(), 20);
        assert_ne!(first, second);
        assert!(r.stdout.contains("sessions have ended"), "{}", r.stdout);
        assert!(must_change().await);

        let r = inkingi(&db, &["users", "reset-password", "nobody.here"], None);
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains("no user named 'nobody.here'"),
            "{}",
            r.stderr
        );
        store.close().await;
    }
}
