//! The probe loops of one container: timing (initialDelaySeconds,
//! periodSeconds, timeoutSeconds), thresholds (successThreshold,
//! failureThreshold), startup gating liveness and readiness, readiness
//! dropping while the pod terminates, and the `Unhealthy`/`ProbeWarning`
//! events for each failed or warned probe.
//!
//! It knows nothing about how a probe is carried out (the [`Prober`]
//! trait) nor where events go (the [`EventSink`] trait), so the decisions
//! are tested with fakes and no containers. It must not touch the runtime
//! or the API itself.

use super::ContainerProbes;
use k8s_openapi::api::core::v1::Probe;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// Which probe of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    /// As upstream writes it at the start of event messages.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    fn lower(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

/// The result of carrying out a probe once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Counts as success; upstream's case is an HTTP redirect to another host.
    Warning(String),
    /// Counts toward failureThreshold.
    Failure(String),
    /// The probe could not be carried out (e.g. a named port the container
    /// does not declare, the runtime not answering): upstream throws the
    /// result away, so it counts neither way.
    Error(String),
}

/// Carries out one probe (http, tcp, exec, grpc) once, within `timeout`.
pub trait Prober: Send + Sync + 'static {
    fn probe(&self, timeout: Duration) -> impl Future<Output = Outcome> + Send;
}

/// Where the loop's events go (the API in production, a list in tests).
pub trait EventSink: Send + Sync + 'static {
    fn warning(&self, reason: &str, message: String);
}

/// The timing and thresholds of one probe, with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: i32, min: i32| Duration::from_secs(v.unwrap_or(default).max(min) as u64);
        let count = |v: Option<i32>, default: i32| v.filter(|n| *n > 0).unwrap_or(default) as u32;
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0, 0),
            period: secs(p.period_seconds, 10, 1),
            timeout: secs(p.timeout_seconds, 1, 1),
            success_threshold: count(p.success_threshold, 1),
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// Consecutive results of one probe against its thresholds.
#[derive(Debug, Clone)]
pub struct Thresholds {
    success: u32,
    failure: u32,
    last: Option<bool>,
    run: u32,
}

impl Thresholds {
    pub fn new(t: &Timing) -> Thresholds {
        Thresholds { success: t.success_threshold.max(1), failure: t.failure_threshold.max(1), last: None, run: 0 }
    }

    /// Feeds one result; returns the probe's settled value once the run of
    /// equal results reaches its threshold (and on every result after).
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let need = if ok { self.success } else { self.failure };
        (self.run >= need).then_some(ok)
    }
}

/// Upstream retries a probe that errored this many times in one period.
const ATTEMPTS: usize = 3;

/// The probes of one container, each with its prober.
pub struct Probes<P> {
    pub startup: Option<(Timing, P)>,
    pub liveness: Option<(Timing, P)>,
    pub readiness: Option<(Timing, P)>,
}

/// Starts the loops; see `ContainerProbes` for what the receivers mean.
pub fn spawn_with<P: Prober, E: EventSink>(container: &str, started_at: Instant, probes: Probes<P>, events: Arc<E>) -> ContainerProbes {
    let (terminating_tx, terminating) = watch::channel(false);
    let (started_tx, started) = watch::channel(probes.startup.is_none());
    let (ready_tx, ready) = watch::channel(false);
    let (live_tx, liveness) = watch::channel(None);
    let (keep_ready, keep_live) = (ready_tx.clone(), live_tx.clone());
    let mut tasks = Vec::new();
    let restart_message = |k: Kind| format!("Container {container} failed {} probe, will be restarted", k.lower());

    if let Some((timing, prober)) = probes.startup {
        let l = Loop { kind: Kind::Startup, timing, started_at, events: events.clone(), terminating: terminating.clone() };
        let (started_tx, live_tx, msg) = (started_tx.clone(), live_tx.clone(), restart_message(Kind::Startup));
        tasks.push(tokio::spawn(async move {
            l.run(prober, None, |ok| {
                if ok {
                    set(&started_tx, true);
                } else {
                    set(&live_tx, Some(msg.clone()));
                }
                false
            })
            .await;
        }));
    }
    if let Some((timing, prober)) = probes.liveness {
        let l = Loop { kind: Kind::Liveness, timing, started_at, events: events.clone(), terminating: terminating.clone() };
        let (gate, msg) = (started.clone(), restart_message(Kind::Liveness));
        tasks.push(tokio::spawn(async move {
            l.run(prober, Some(gate), |ok| {
                if !ok {
                    set(&live_tx, Some(msg.clone()));
                }
                ok
            })
            .await;
        }));
    }
    let gate = started.clone();
    let mut term = terminating.clone();
    match probes.readiness {
        Some((timing, prober)) => {
            let l = Loop { kind: Kind::Readiness, timing, started_at, events, terminating: terminating.clone() };
            tasks.push(tokio::spawn(async move {
                let tx = ready_tx.clone();
                l.run(prober, Some(gate), |ok| {
                    set(&tx, ok);
                    true
                })
                .await;
                // Only terminating (or a closed channel) ends the loop.
                set(&ready_tx, false);
            }));
        }
        None => tasks.push(tokio::spawn(async move {
            if wait_started(Some(gate), &mut term).await {
                set(&ready_tx, true);
                let _ = term.wait_for(|t| *t).await;
            }
            set(&ready_tx, false);
        })),
    }
    ContainerProbes::new((ready, started, liveness), (keep_ready, started_tx, keep_live), terminating_tx, tasks)
}

struct Loop<E> {
    kind: Kind,
    timing: Timing,
    started_at: Instant,
    events: Arc<E>,
    terminating: watch::Receiver<bool>,
}

impl<E: EventSink> Loop<E> {
    /// Probes every period from initialDelaySeconds after the container
    /// started (and not before `gate` is true), feeding settled values to
    /// `settle` until it returns false or the pod terminates.
    async fn run<P: Prober>(mut self, prober: P, gate: Option<watch::Receiver<bool>>, mut settle: impl FnMut(bool) -> bool) {
        if !wait_started(gate, &mut self.terminating).await {
            return;
        }
        let first = (self.started_at + self.timing.initial_delay).max(Instant::now());
        let mut ticks = tokio::time::interval_at(first, self.timing.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut thresholds = Thresholds::new(&self.timing);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = self.terminating.wait_for(|t| *t) => return,
            }
            let Some(ok) = self.once(&prober).await else { continue };
            if let Some(value) = thresholds.observe(ok) {
                if !settle(value) {
                    tracing::debug!(probe = self.kind.lower(), "probe settled; stopping");
                    return;
                }
            }
        }
    }

    /// One probe (retried while it errors); None when it never gave a result.
    async fn once<P: Prober>(&self, prober: &P) -> Option<bool> {
        let title = self.kind.title();
        // The handlers keep their own timeouts; this only bounds a handler
        // that does not.
        let bound = self.timing.timeout + Duration::from_secs(5);
        for _ in 0..ATTEMPTS {
            let outcome = match tokio::time::timeout(bound, prober.probe(self.timing.timeout)).await {
                Ok(o) => o,
                Err(_) => Outcome::Failure(format!("probe did not finish within {}s", bound.as_secs())),
            };
            match outcome {
                Outcome::Success => return Some(true),
                Outcome::Warning(m) => {
                    self.events.warning("ProbeWarning", format!("{title} probe warning: {m}"));
                    return Some(true);
                }
                Outcome::Failure(m) => {
                    tracing::debug!(probe = self.kind.lower(), output = m, "probe failed");
                    self.events.warning("Unhealthy", format!("{title} probe failed: {m}"));
                    return Some(false);
                }
                Outcome::Error(m) => {
                    tracing::debug!(probe = self.kind.lower(), error = m, "probe errored");
                    self.events.warning("Unhealthy", format!("{title} probe errored and resulted in unknown state: {m}"));
                }
            }
        }
        None
    }
}

/// Sets a value, waking receivers only when it changes.
fn set<T: PartialEq>(tx: &watch::Sender<T>, value: T) {
    tx.send_if_modified(|cur| {
        let changed = *cur != value;
        *cur = value;
        changed
    });
}

/// Waits until `gate` (the startup probe) is true; false when the pod
/// terminates first or the gate is gone.
async fn wait_started(gate: Option<watch::Receiver<bool>>, terminating: &mut watch::Receiver<bool>) -> bool {
    let Some(mut gate) = gate else { return !*terminating.borrow() };
    let passed = tokio::select! {
        r = gate.wait_for(|s| *s) => r.is_ok(),
        _ = terminating.wait_for(|t| *t) => false,
    };
    passed && !*terminating.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn timing(period: u64, success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn defaults_follow_upstream() {
        let t = Timing::of(&Probe::default());
        assert_eq!(t, timing(10, 1, 3));
        let t = Timing::of(&Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(0),
            timeout_seconds: Some(-1),
            success_threshold: Some(2),
            failure_threshold: Some(0),
            ..Default::default()
        });
        assert_eq!(t.initial_delay, Duration::from_secs(5));
        assert_eq!(t.period, Duration::from_secs(1));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (2, 3));
    }

    #[test]
    fn thresholds_need_consecutive_results() {
        let mut th = Thresholds::new(&timing(1, 2, 3));
        assert_eq!(th.observe(true), None);
        assert_eq!(th.observe(true), Some(true));
        assert_eq!(th.observe(true), Some(true));
        assert_eq!(th.observe(false), None);
        assert_eq!(th.observe(false), None);
        assert_eq!(th.observe(true), None, "a success breaks the run of failures");
        assert_eq!(th.observe(false), None);
        assert_eq!(th.observe(false), None);
        assert_eq!(th.observe(false), Some(false));
        assert_eq!(th.observe(false), Some(false));
    }

    #[test]
    fn threshold_of_one_settles_at_once() {
        let mut th = Thresholds::new(&timing(1, 1, 1));
        assert_eq!(th.observe(false), Some(false));
        assert_eq!(th.observe(true), Some(true));
    }

    /// Answers from a script, then repeats its last answer; counts calls.
    struct Fake {
        script: Mutex<VecDeque<Outcome>>,
        last: Mutex<Outcome>,
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    fn fake(script: Vec<Outcome>) -> (Fake, Arc<Mutex<Vec<Instant>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let f = Fake { script: Mutex::new(script.into()), last: Mutex::new(Outcome::Success), calls: calls.clone() };
        (f, calls)
    }

    impl Prober for Fake {
        async fn probe(&self, _timeout: Duration) -> Outcome {
            self.calls.lock().expect("lock").push(Instant::now());
            let next = self.script.lock().expect("lock").pop_front();
            let mut last = self.last.lock().expect("lock");
            if let Some(o) = next {
                *last = o;
            }
            last.clone()
        }
    }

    #[derive(Default)]
    struct Events(Mutex<Vec<(String, String)>>);

    impl EventSink for Events {
        fn warning(&self, reason: &str, message: String) {
            self.0.lock().expect("lock").push((reason.to_string(), message));
        }
    }

    impl Events {
        fn list(&self) -> Vec<(String, String)> {
            self.0.lock().expect("lock").clone()
        }
    }

    fn fail(m: &str) -> Outcome {
        Outcome::Failure(m.to_string())
    }

    async fn changed<T: Clone>(rx: &mut watch::Receiver<T>) -> T {
        tokio::time::timeout(Duration::from_secs(3600), rx.changed()).await.expect("test").expect("test");
        rx.borrow_and_update().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn no_probes_means_started_and_ready_at_once() {
        let none = Probes::<Fake> { startup: None, liveness: None, readiness: None };
        let mut p = spawn_with("c", Instant::now(), none, Arc::new(Events::default()));
        assert!(*p.started.borrow());
        p.ready.wait_for(|r| *r).await.expect("test");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(p.started.has_changed().is_ok() && p.liveness.has_changed().is_ok(), "channels stay open while the value lives");
        p.set_terminating();
        p.ready.wait_for(|r| !*r).await.expect("test");
        assert_eq!(*p.liveness.borrow(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_waits_for_success_threshold_and_initial_delay() {
        let t0 = Instant::now();
        let (prober, calls) = fake(vec![fail("HTTP probe failed with statuscode: 500"), Outcome::Success, Outcome::Success]);
        let mut t = timing(2, 2, 1);
        t.initial_delay = Duration::from_secs(5);
        let events = Arc::new(Events::default());
        let probes = Probes { startup: None, liveness: None, readiness: Some((t, prober)) };
        let mut p = spawn_with("web", t0, probes, events.clone());
        assert!(!*p.ready.borrow());
        assert!(changed(&mut p.ready).await);
        let calls = calls.lock().expect("lock").clone();
        let offsets: Vec<u64> = calls.iter().map(|c| (*c - t0).as_secs()).collect();
        assert_eq!(offsets, vec![5, 7, 9], "first probe at initialDelaySeconds, then every period");
        assert_eq!(
            events.list(),
            vec![("Unhealthy".to_string(), "Readiness probe failed: HTTP probe failed with statuscode: 500".to_string())]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_goes_false_after_failure_threshold_and_back() {
        let (prober, _) = fake(vec![Outcome::Success, fail("x"), fail("x"), Outcome::Success]);
        let probes = Probes { startup: None, liveness: None, readiness: Some((timing(1, 1, 2), prober)) };
        let events = Arc::new(Events::default());
        let mut p = spawn_with("c", Instant::now(), probes, events.clone());
        assert!(changed(&mut p.ready).await);
        assert!(!changed(&mut p.ready).await);
        assert!(changed(&mut p.ready).await);
        assert_eq!(events.list().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_fires_once_after_failure_threshold_then_stops() {
        let (prober, calls) = fake(vec![Outcome::Success, fail("a"), fail("b"), fail("c"), fail("d")]);
        let probes = Probes { startup: None, liveness: Some((timing(1, 1, 3), prober)), readiness: None };
        let events = Arc::new(Events::default());
        let mut p = spawn_with("app", Instant::now(), probes, events.clone());
        let msg = changed(&mut p.liveness).await;
        assert_eq!(msg.as_deref(), Some("Container app failed liveness probe, will be restarted"));
        let n = calls.lock().expect("lock").len();
        assert_eq!(n, 4);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(calls.lock().expect("lock").len(), n, "no probing after the restart decision");
        let reasons: Vec<String> = events.list().into_iter().map(|(_, m)| m).collect();
        assert_eq!(reasons, vec!["Liveness probe failed: a", "Liveness probe failed: b", "Liveness probe failed: c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_retried_and_do_not_count() {
        let script = vec![
            Outcome::Error("e1".into()),
            Outcome::Error("e2".into()),
            Outcome::Error("e3".into()),
            Outcome::Error("e4".into()),
            fail("f"),
        ];
        let (prober, calls) = fake(script);
        let probes = Probes { startup: None, liveness: Some((timing(10, 1, 1), prober)), readiness: None };
        let events = Arc::new(Events::default());
        let mut p = spawn_with("c", Instant::now(), probes, events.clone());
        let t0 = Instant::now();
        assert!(changed(&mut p.liveness).await.is_some());
        let calls = calls.lock().expect("lock").clone();
        // Three attempts in the first period, then e4 and the failure in the next.
        let offsets: Vec<u64> = calls.iter().map(|c| (*c - t0).as_secs()).collect();
        assert_eq!(offsets, vec![0, 0, 0, 10, 10]);
        assert_eq!(events.list()[0].1, "Liveness probe errored and resulted in unknown state: e1");
    }

    #[tokio::test(start_paused = true)]
    async fn startup_gates_liveness_and_readiness() {
        let (startup, startup_calls) = fake(vec![fail("not yet"), fail("not yet"), Outcome::Success]);
        let (live, live_calls) = fake(vec![fail("dead")]);
        let (ready, ready_calls) = fake(vec![Outcome::Success]);
        let probes = Probes {
            startup: Some((timing(1, 1, 5), startup)),
            liveness: Some((timing(1, 1, 2), live)),
            readiness: Some((timing(1, 1, 1), ready)),
        };
        let t0 = Instant::now();
        let mut p = spawn_with("c", t0, probes, Arc::new(Events::default()));
        assert!(!*p.started.borrow());
        assert!(changed(&mut p.ready).await);
        assert!(*p.started.borrow(), "ready only after started");
        let first_startup_success = startup_calls.lock().expect("lock")[2];
        assert!(ready_calls.lock().expect("lock").iter().all(|c| *c >= first_startup_success));
        assert_eq!(changed(&mut p.liveness).await.as_deref(), Some("Container c failed liveness probe, will be restarted"));
        assert!(live_calls.lock().expect("lock").iter().all(|c| *c >= first_startup_success));
        assert_eq!(startup_calls.lock().expect("lock").len(), 3, "startup stops once it passed");
    }

    #[tokio::test(start_paused = true)]
    async fn startup_failure_asks_for_restart() {
        let (startup, _) = fake(vec![fail("no")]);
        let (ready, ready_calls) = fake(vec![Outcome::Success]);
        let probes = Probes { startup: Some((timing(1, 1, 3), startup)), liveness: None, readiness: Some((timing(1, 1, 1), ready)) };
        let mut p = spawn_with("c", Instant::now(), probes, Arc::new(Events::default()));
        assert_eq!(changed(&mut p.liveness).await.as_deref(), Some("Container c failed startup probe, will be restarted"));
        assert!(!*p.started.borrow() && !*p.ready.borrow());
        assert!(ready_calls.lock().expect("lock").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn terminating_drops_readiness_and_stops_liveness() {
        let (ready, _) = fake(vec![Outcome::Success]);
        let (live, live_calls) = fake(vec![Outcome::Success]);
        let probes = Probes { startup: None, liveness: Some((timing(1, 1, 1), live)), readiness: Some((timing(1, 1, 1), ready)) };
        let mut p = spawn_with("c", Instant::now(), probes, Arc::new(Events::default()));
        assert!(changed(&mut p.ready).await);
        p.set_terminating();
        assert!(!changed(&mut p.ready).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let n = live_calls.lock().expect("lock").len();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(live_calls.lock().expect("lock").len(), n);
        assert_eq!(*p.liveness.borrow(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn warnings_count_as_success_with_an_event() {
        let (ready, _) = fake(vec![Outcome::Warning("Probe terminated redirects, Response body: ".into())]);
        let events = Arc::new(Events::default());
        let probes = Probes { startup: None, liveness: None, readiness: Some((timing(1, 1, 1), ready)) };
        let mut p = spawn_with("c", Instant::now(), probes, events.clone());
        assert!(changed(&mut p.ready).await);
        assert_eq!(
            events.list()[0],
            ("ProbeWarning".into(), "Readiness probe warning: Probe terminated redirects, Response body: ".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_stops_the_loops() {
        let (live, calls) = fake(vec![Outcome::Success]);
        let probes = Probes { startup: None, liveness: Some((timing(1, 1, 1), live)), readiness: None };
        let p = spawn_with("c", Instant::now(), probes, Arc::new(Events::default()));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        drop(p);
        let n = calls.lock().expect("lock").len();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(calls.lock().expect("lock").len(), n);
    }
}
