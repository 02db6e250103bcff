//! Leader election through a coordination.k8s.io/v1 Lease, as client-go's
//! leaderelection: one holder at a time; the others take over when the
//! holder has not renewed for the lease duration (measured on their own
//! clock, from when they last saw the record change, so clock skew between
//! servers does not matter).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub lease: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Election {
    pub fn new(lease: &str, identity: &str) -> Self {
        Self {
            namespace: "kube-system".into(),
            lease: lease.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

struct Observed {
    record: Option<(Option<String>, Option<MicroTime>)>,
    at: Instant,
}

/// Try once to take or renew the lease. Ok(true) when we hold it now.
async fn try_acquire(api: &kube::Api<Lease>, e: &Election, seen: &mut Observed) -> Result<bool, kube::Error> {
    let now = MicroTime(jiff::Timestamp::now());
    let current = api.get_opt(&e.lease).await?;
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(e.lease.clone()), namespace: Some(e.namespace.clone()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(e.identity.clone()),
                lease_duration_seconds: Some(e.lease_duration.as_secs() as i32),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(err) => Err(err),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let record = (spec.holder_identity.clone(), spec.renew_time.clone());
    if seen.record.as_ref() != Some(&record) {
        seen.record = Some(record);
        seen.at = Instant::now();
    }
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
    let mine = holder == e.identity;
    if !mine && !holder.is_empty() && seen.at.elapsed() < duration {
        return Ok(false);
    }
    let mut new = spec.clone();
    new.holder_identity = Some(e.identity.clone());
    new.lease_duration_seconds = Some(e.lease_duration.as_secs() as i32);
    new.renew_time = Some(now.clone());
    if !mine {
        new.acquire_time = Some(now);
        new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    lease.spec = Some(new);
    match api.replace(&e.lease, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// Run forever: whenever this process becomes the leader, call `lead` to
/// start the work and keep the lease renewed; when renewal fails for the
/// renew deadline, call `stop` with what `lead` returned and start over.
pub async fn run<T, L, S>(client: kube::Client, e: Election, mut lead: L, mut stop: S)
where
    L: FnMut() -> T,
    S: FnMut(T),
{
    let api: kube::Api<Lease> = kube::Api::namespaced(client, &e.namespace);
    let mut seen = Observed { record: None, at: Instant::now() };
    loop {
        match try_acquire(&api, &e, &mut seen).await {
            Ok(true) => {}
            Ok(false) => {
                tokio::time::sleep(e.retry_period).await;
                continue;
            }
            Err(err) => {
                tracing::warn!(lease = e.lease, error = %err, "leader election: cannot read or write the lease");
                tokio::time::sleep(e.retry_period).await;
                continue;
            }
        }
        tracing::info!(lease = e.lease, identity = e.identity, "became leader");
        let work = lead();
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(e.retry_period).await;
            match try_acquire(&api, &e, &mut seen).await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = e.lease, "leader election: another holder took the lease");
                    break;
                }
                Err(err) => {
                    tracing::warn!(lease = e.lease, error = %err, "leader election: renewal failed");
                    if renewed.elapsed() >= e.renew_deadline {
                        break;
                    }
                }
            }
        }
        tracing::warn!(lease = e.lease, identity = e.identity, "lost leadership; stopping");
        stop(work);
    }
}
