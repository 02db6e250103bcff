//! Leader election through a Lease: of several candidates sharing one API
//! server (and so one datastore), exactly one leads; when it stops renewing,
//! another takes over within the lease duration.

use coracle_control::api::ApiServer;
use coracle_control::controllers::{client, leader};
use coracle_control::store::sqlite::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn election(identity: &str) -> leader::Election {
    let mut e = leader::Election::new("test-lock", identity);
    e.lease_duration = Duration::from_secs(2);
    e.renew_deadline = Duration::from_millis(1500);
    e.retry_period = Duration::from_millis(200);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_candidate_leads_and_another_takes_over_when_it_stops() {
    let dir = std::env::temp_dir().join(format!("coracle-leader-{}", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteStore::open(&dir.join("state.db")).expect("store"));
    let api = ApiServer::new(store.clone()).await.expect("api server");
    api.bootstrap().await.expect("bootstrap");

    let leading = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let leaders: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for id in ["a", "b", "c"] {
        let c = client::in_process(api.clone());
        let (leading, most, leaders) = (leading.clone(), most.clone(), leaders.clone());
        let leading2 = leading.clone();
        tasks.push(tokio::spawn(async move {
            leader::run(
                c,
                election(id),
                move || {
                    let n = leading.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    leaders.lock().map(|mut l| l.push(id.to_string())).ok();
                },
                move |_| {
                    leading2.fetch_sub(1, Ordering::SeqCst);
                },
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = leaders.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(first.len(), 1, "exactly one candidate leads: {first:?}");
    assert_eq!(most.load(Ordering::SeqCst), 1);

    // Stop the leader without releasing: the others must wait out the lease.
    let idx = ["a", "b", "c"].iter().position(|i| *i == first[0]).expect("leader is a candidate");
    tasks[idx].abort();
    leading.fetch_sub(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = leaders.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(now.len(), 2, "one new leader after the old one stopped: {now:?}");
    assert_ne!(now[1], now[0]);
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two leaders at once");
    for t in tasks {
        t.abort();
    }
    store.close();
    let _ = std::fs::remove_dir_all(&dir);
}
