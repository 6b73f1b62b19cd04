//! The identity store on both backends: sessions end by idle or absolute time, users and
//! tokens round-trip.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use inkingi_domain::identity::{AreaScope, Role, TokenScope, Username};
use inkingi_store::identity::{NewSession, NewToken, NewUser};
use inkingi_testkit::databases;

#[tokio::test]
async fn sessions_are_purged_by_idle_and_absolute_time() {
    for db in databases().await {
        let store = db.store().await;
        let ids = store.identity();
        let user = ids
            .create_user(&NewUser {
                username: Username::parse("jo.officer").unwrap(),
                role: Role::DistrictOfficer,
                scope: AreaScope::parse("11 23").unwrap(),
                password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
                must_change_password: false,
            })
            .await
            .unwrap();
        assert_eq!(user.scope.to_string(), "11 23");
        let now = Utc::now();
        let session = |id: u8, created: Duration, expires: Duration| NewSession {
            id_hash: vec![id; 32],
            user_id: user.id,
            csrf_token: "c".repeat(64),
            created_at: now - created,
            expires_at: now + expires,
            client_addr: Some("127.0.0.1".into()),
        };
        // Fresh; idle for an hour; past its absolute end.
        ids.create_session(&session(1, Duration::zero(), Duration::hours(12)))
            .await
            .unwrap();
        ids.create_session(&session(2, Duration::hours(1), Duration::hours(11)))
            .await
            .unwrap();
        ids.create_session(&session(3, Duration::zero(), Duration::seconds(-1)))
            .await
            .unwrap();
        let purged = ids
            .purge_sessions(now, now - Duration::minutes(30))
            .await
            .unwrap();
        assert_eq!(purged, 2, "[{db:?}]");
        let kept = ids.session(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(kept.user.username.as_str(), "jo.officer");
        assert!(ids.session(&[2; 32]).await.unwrap().is_none());

        let token = ids
            .create_token(&NewToken {
                id: uuid::Uuid::now_v7(),
                prefix: "ink_ABCDEFGH".into(),
                hash: vec![7; 32],
                user_id: user.id,
                scopes: vec![
                    TokenScope::Read,
                    TokenScope::Purpose(inkingi_domain::identity::Purpose::Registration),
                ],
                area_scope: AreaScope::parse("1101").unwrap(),
                created_at: now,
                expires_at: None,
            })
            .await
            .unwrap();
        let found = ids.token_by_prefix("ink_ABCDEFGH").await.unwrap().unwrap();
        assert_eq!(found.info, token);
        assert_eq!(found.hash, vec![7; 32]);
        assert_eq!(found.user_scope, user.scope);
        assert!(ids.revoke_token(token.id, now).await.unwrap());
        assert!(!ids.revoke_token(token.id, now).await.unwrap());
        // Disabling a user ends their sessions.
        assert!(ids.set_user_disabled(&user.username, true).await.unwrap());
        assert!(ids.session(&[1; 32]).await.unwrap().is_none());
        store.close().await;
    }
}
