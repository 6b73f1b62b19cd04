//! The test harness shared by integration tests.
//!
//! [`databases`] gives one fresh, empty database per configured backend: SQLite always (a file in
//! a temporary directory), and PostgreSQL when `INKINGI_TEST_DATABASE_URL` is set (the harness
//! creates a database named `inkingi_t_<uuid>` on that server and drops it afterwards). Tests loop
//! over them so the same assertions hold on both backends.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use inkingi_server::{AppState, ServerSettings};
use inkingi_store::{BackendKind, ConnectOptions, Store};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

pub const PG_ENV: &str = "INKINGI_TEST_DATABASE_URL";

/// A fresh database that disappears when dropped.
pub struct TestDb {
    pub url: String,
    pub kind: BackendKind,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgDrop>,
}

struct PgDrop {
    admin_url: String,
    name: String,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind.as_str())
    }
}

/// One fresh database per configured backend.
pub async fn databases() -> Vec<TestDb> {
    let mut out = vec![sqlite().await];
    if let Ok(admin) = std::env::var(PG_ENV) {
        if !admin.trim().is_empty() {
            out.push(postgres(&admin).await);
        }
    }
    out
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("inkingi.db").display());
    TestDb {
        url,
        kind: BackendKind::Sqlite,
        _dir: Some(dir),
        pg: None,
    }
}

pub async fn postgres(admin_url: &str) -> TestDb {
    let name = format!("inkingi_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {PG_ENV}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    TestDb {
        url: with_database(admin_url, &name),
        kind: BackendKind::Postgres,
        _dir: None,
        pg: Some(PgDrop {
            admin_url: admin_url.to_string(),
            name,
        }),
    }
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(pg) = self.pg.take() else { return };
        // Drop runs outside async context; use a private runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg.admin_url).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name))
                            .execute(&mut conn)
                            .await;
                }
            })
        })
        .join();
    }
}

impl TestDb {
    /// Connected and migrated.
    pub async fn store(&self) -> Store {
        let mut opts = ConnectOptions::new(&self.url);
        opts.max_connections = 4;
        let store = Store::connect(&opts).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

/// The real router serving on a free loopback port, reached over real HTTP.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Store,
    pub kind: BackendKind,
    /// The server's audit writer: `flush` it before reading the log through `store`, since
    /// reads of personal data are queued, not waited for.
    pub audit: inkingi_server::audit_writer::AuditWriter,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn start(db: &TestDb) -> TestApp {
        Self::start_with(db, ServerSettings::default()).await
    }

    pub async fn start_with(db: &TestDb, settings: ServerSettings) -> TestApp {
        let store = db.store().await;
        let state = AppState::new(store.clone(), settings).unwrap();
        let audit = state.audit.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(inkingi_server::serve(listener, state, shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            addr,
            client,
            store,
            kind: db.kind,
            audit,
            shutdown,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// GET, asserting the status, returning the JSON body.
    pub async fn get_json(&self, path: &str, status: u16) -> serde_json::Value {
        let res = self.get(path).await;
        let got = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_eq!(
            got,
            status,
            "[{}] GET {path} -> {got}: {body}",
            self.kind.as_str()
        );
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
        self.store.close().await;
    }
}
