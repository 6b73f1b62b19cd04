//! The chain stays intact when many requests and several nodes append at once, and an append
//! inside a unit of work commits or rolls back with it.
#![allow(clippy::unwrap_used)]

use inkingi_domain::audit::{AuditRecord, ChainHead, ChainVerifier};
use inkingi_store::Store;
use inkingi_testkit::databases;

async fn verify_all(store: &Store) -> ChainHead {
    let mut v = ChainVerifier::default();
    loop {
        let page = store
            .audit()
            .entries_after(v.head().seq, 1000)
            .await
            .unwrap();
        if page.is_empty() {
            return v.head();
        }
        for e in page {
            v.check(&e.unwrap()).unwrap();
        }
    }
}

fn records(task: usize, round: usize) -> Vec<AuditRecord> {
    (0..=(round % 3))
        .map(|i| {
            let mut r = AuditRecord::new(format!("user{task}"), "person.read", "person");
            r.subject_id = Some(format!("P-{task}-{round}-{i}"));
            r
        })
        .collect()
}

#[tokio::test]
async fn concurrent_appends_from_two_nodes_keep_one_chain() {
    for db in databases().await {
        // Two stores on one database stand for two server nodes.
        let nodes = [db.store().await, db.store().await];
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = nodes[task % 2].clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                for round in 0..25 {
                    let batch = records(task, round);
                    n += batch.len() as i64;
                    store.audit().append(batch).await.unwrap();
                }
                n
            }));
        }
        let mut expected = 0;
        for t in tasks {
            expected += t.await.unwrap();
        }
        let head = verify_all(&nodes[0]).await;
        assert_eq!(head.seq, expected, "[{db:?}]");
        assert_eq!(nodes[1].audit().head().await.unwrap(), head, "[{db:?}]");
        for n in nodes {
            n.close().await;
        }
    }
}

#[tokio::test]
async fn appends_in_a_unit_of_work_commit_or_roll_back_with_it() {
    for db in databases().await {
        let store = db.store().await;
        store.audit().append(records(0, 0)).await.unwrap();
        let before = store.audit().head().await.unwrap();

        let mut uow = store.begin().await.unwrap();
        store
            .audit()
            .append_in(&mut uow, records(1, 2))
            .await
            .unwrap();
        uow.rollback().await.unwrap();
        assert_eq!(store.audit().head().await.unwrap(), before, "[{db:?}]");

        let mut uow = store.begin().await.unwrap();
        let head = store
            .audit()
            .append_in(&mut uow, records(1, 2))
            .await
            .unwrap();
        uow.commit().await.unwrap();
        assert_eq!(head.seq, before.seq + 3);
        assert_eq!(verify_all(&store).await, head, "[{db:?}]");
        store.close().await;
    }
}
