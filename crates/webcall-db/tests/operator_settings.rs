//! The operator's settings in SQL (relay quotas with their version, signing key
//! generations, each change with its audit entry), against a real SQLite file
//! always and PostgreSQL when `TEST_DATABASE_URL` is set.

use chrono::{TimeZone, Utc};
use uuid::Uuid;
use webcall_db::SqlStore;
use webcall_domain::admin::{AdminRepository, NewAuditEntry};
use webcall_domain::model::UserId;
use webcall_domain::operations::{KeyGeneration, KeyKind, RelayQuotas};
use webcall_domain::ports::OperatorSettings;

/// Runs `check` on a fresh SQLite file, and on a fresh PostgreSQL schema when
/// one is configured.
async fn on_every_backend<F, Fut>(check: F)
where
    F: Fn(SqlStore) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    check(SqlStore::connect_and_migrate(&url).await.unwrap()).await;
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL"
        );
        return;
    };
    let schema = format!("test_{}", Uuid::new_v4().simple());
    let admin = SqlStore::connect(&url).await.unwrap();
    admin
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = SqlStore::connect_and_migrate(&scoped).await.unwrap();
    check(store.clone()).await;
    store.close().await;
    admin
        .execute_raw(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    admin.close().await;
}

fn audit(action: &'static str, target: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: Utc::now(),
        actor: UserId::new_random(),
        actor_name: "root".into(),
        action,
        target: target.into(),
        detail: None,
    }
}

/// The actions of the audit log, newest first.
async fn audited(store: &SqlStore) -> Vec<(String, String)> {
    let entries = store.audit_page(None, 100).await.unwrap();
    entries.into_iter().map(|e| (e.action, e.target)).collect()
}

#[tokio::test]
async fn relay_quotas_are_absent_until_saved_and_each_save_is_a_new_version() {
    on_every_backend(|store| async move {
        assert_eq!(store.relay_quotas().await.unwrap(), None);
        let first = RelayQuotas::new(3, 100).unwrap();
        let set = || audit("turn.quotas.set", "turn");
        assert_eq!(store.save_relay_quotas(first, set()).await.unwrap(), 1);
        assert_eq!(store.relay_quotas().await.unwrap(), Some((first, 1)));
        let second = RelayQuotas::new(65_535, 65_535).unwrap();
        assert_eq!(store.save_relay_quotas(second, set()).await.unwrap(), 2);
        assert_eq!(store.relay_quotas().await.unwrap(), Some((second, 2)));
        assert_eq!(audited(&store).await.len(), 2, "one entry per change");
    })
    .await;
}

#[tokio::test]
async fn concurrent_quota_saves_get_distinct_versions() {
    on_every_backend(|store| async move {
        let saves = (1..=8).map(|n| {
            let store = store.clone();
            async move {
                store
                    .save_relay_quotas(
                        RelayQuotas::new(n, 100).unwrap(),
                        audit("turn.quotas.set", "turn"),
                    )
                    .await
                    .unwrap()
            }
        });
        let mut versions = futures_join(saves).await;
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
    })
    .await;
}

/// Runs the futures at once.
async fn futures_join<T: Send + 'static>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn keys_start_at_generation_zero_and_rotate_one_at_a_time() {
    on_every_backend(|store| async move {
        for kind in KeyKind::ALL {
            assert_eq!(
                store.key_generation(kind).await.unwrap(),
                KeyGeneration::INITIAL
            );
        }
        let at = Utc.timestamp_millis_opt(1_765_000_000_123).unwrap();
        let rotated = store
            .rotate_key(KeyKind::Jwt, at, audit("key.rotate", "jwt"))
            .await
            .unwrap();
        assert_eq!(rotated, KeyGeneration::INITIAL.next(at));
        let again = store
            .rotate_key(
                KeyKind::Jwt,
                at + chrono::Duration::seconds(1),
                audit("key.rotate", "jwt"),
            )
            .await
            .unwrap();
        assert_eq!(again.generation, 2);
        assert_eq!(store.key_generation(KeyKind::Jwt).await.unwrap(), again);
        assert_eq!(
            store.key_generation(KeyKind::Turn).await.unwrap(),
            KeyGeneration::INITIAL,
            "each key rotates on its own"
        );
        assert_eq!(
            audited(&store).await,
            vec![("key.rotate".to_owned(), "jwt".to_owned()); 2]
        );
    })
    .await;
}
