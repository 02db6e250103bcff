//! The scheduling queue: pending pods ordered by priority (then arrival),
//! a back-off area for pods that just failed (1 s doubling to 10 s), and
//! the unschedulable pods, which wait for a cluster change that may help
//! them (by the filters that refused them) or at most five minutes.

use super::filters::plugin;
use super::pod_info::PodInfo;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest an unschedulable pod waits without any helpful event.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Active(u64),
    Backoff(u64),
    /// Since when, and the filters that refused it.
    Unschedulable(Instant, u16),
    /// Popped: being scheduled or bound.
    InFlight,
    /// Blocked by `schedulingGates`.
    Gated,
}

#[derive(Debug)]
struct Entry {
    info: Arc<PodInfo>,
    at: Where,
    attempts: u32,
    last_failure: Option<Instant>,
}

impl Entry {
    fn backoff_until(&self) -> Option<Instant> {
        let last = self.last_failure?;
        let n = self.attempts.saturating_sub(1).min(8);
        Some(last + (INITIAL_BACKOFF * (1u32 << n)).min(MAX_BACKOFF))
    }
}

#[derive(PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    seq: u64,
    uid: String,
}

impl Ord for ActiveItem {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority.cmp(&o.priority).then_with(|| o.seq.cmp(&self.seq))
    }
}
impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Default)]
pub struct SchedulingQueue {
    pods: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
}

fn gated(info: &PodInfo) -> bool {
    info.pod.spec.as_ref().and_then(|s| s.scheduling_gates.as_ref()).map(|g| !g.is_empty()).unwrap_or(false)
}

/// The parts of a pending pod whose change may make it schedulable.
fn spec_changed(a: &PodInfo, b: &PodInfo) -> bool {
    a.labels != b.labels || a.pod.spec != b.pod.spec || a.priority != b.priority
}

impl SchedulingQueue {
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    fn activate(&mut self, uid: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.pods.get_mut(uid) {
            e.at = Where::Active(seq);
            self.active.push(ActiveItem { priority: e.info.priority, seq, uid: uid.to_string() });
        }
    }

    fn put_in_backoff(&mut self, uid: &str, until: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.pods.get_mut(uid) {
            e.at = Where::Backoff(seq);
            self.backoff.push(Reverse((until, seq, uid.to_string())));
        }
    }

    /// Active now if its back-off is over, else back-off.
    fn release(&mut self, uid: &str, now: Instant) {
        match self.pods.get(uid).and_then(Entry::backoff_until) {
            Some(until) if until > now => self.put_in_backoff(uid, until),
            _ => self.activate(uid),
        }
    }

    /// A pending pod was created or changed. Returns true when it is new.
    pub fn upsert(&mut self, info: Arc<PodInfo>, now: Instant) -> bool {
        let uid = info.uid.clone();
        let Some(e) = self.pods.get_mut(&uid) else {
            let is_gated = gated(&info);
            self.pods.insert(uid.clone(), Entry { info, at: Where::Gated, attempts: 0, last_failure: None });
            if !is_gated {
                self.activate(&uid);
            }
            return true;
        };
        let changed = spec_changed(&e.info, &info);
        let is_gated = gated(&info);
        let priority_changed = e.info.priority != info.priority;
        e.info = info;
        match e.at {
            Where::Gated if !is_gated => self.activate(&uid),
            Where::Unschedulable(..) if changed => self.release(&uid, now),
            Where::Active(_) if priority_changed => self.activate(&uid),
            _ => {}
        }
        false
    }

    pub fn remove(&mut self, uid: &str) {
        self.pods.remove(uid);
    }

    pub fn info(&self, uid: &str) -> Option<&Arc<PodInfo>> {
        self.pods.get(uid).map(|e| &e.info)
    }

    pub fn is_gated(&self, uid: &str) -> bool {
        self.pods.get(uid).map(|e| e.at == Where::Gated).unwrap_or(false)
    }

    pub fn is_in_flight(&self, uid: &str) -> bool {
        self.pods.get(uid).map(|e| e.at == Where::InFlight).unwrap_or(false)
    }

    fn flush_backoff(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, uid))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            if self.pods.get(&uid).map(|e| e.at == Where::Backoff(seq)).unwrap_or(false) {
                self.activate(&uid);
            }
        }
    }

    /// The next pod to schedule (highest priority, then oldest), now in flight.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<PodInfo>> {
        self.flush_backoff(now);
        while let Some(item) = self.active.pop() {
            let Some(e) = self.pods.get_mut(&item.uid) else { continue };
            if e.at != Where::Active(item.seq) {
                continue;
            }
            e.at = Where::InFlight;
            return Some(e.info.clone());
        }
        None
    }

    /// Is a pod ready to pop (after moving back-offs that are over)?
    pub fn has_active(&mut self, now: Instant) -> bool {
        self.flush_backoff(now);
        while let Some(item) = self.active.peek() {
            if self.pods.get(&item.uid).map(|e| e.at == Where::Active(item.seq)).unwrap_or(false) {
                return true;
            }
            self.active.pop();
        }
        false
    }

    /// The pod fits nowhere: wait for a change that involves `plugins`.
    pub fn unschedulable(&mut self, uid: &str, plugins: u16, now: Instant) {
        if let Some(e) = self.pods.get_mut(uid) {
            e.attempts += 1;
            e.last_failure = Some(now);
            e.at = Where::Unschedulable(now, plugins);
        }
    }

    /// Something went wrong (binding failed): retry after the back-off.
    pub fn backoff(&mut self, uid: &str, now: Instant) {
        if let Some(e) = self.pods.get_mut(uid) {
            e.attempts += 1;
            e.last_failure = Some(now);
            let until = e.backoff_until().unwrap_or(now);
            self.put_in_backoff(uid, until);
        }
    }

    /// A cluster change that may help pods refused by any of `plugins`.
    pub fn move_unschedulable(&mut self, plugins: u16, now: Instant) {
        let uids: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| matches!(e.at, Where::Unschedulable(_, p) if p & plugins != 0))
            .map(|(u, _)| u.clone())
            .collect();
        for uid in uids {
            self.release(&uid, now);
        }
    }

    /// Retry one waiting pod (after its back-off), e.g. one that lost its nomination.
    pub fn retry(&mut self, uid: &str, now: Instant) {
        if matches!(self.pods.get(uid).map(|e| e.at), Some(Where::Unschedulable(..))) {
            self.release(uid, now);
        }
    }

    /// Retry the pods that waited too long for a helpful event.
    pub fn flush_unschedulable(&mut self, now: Instant) {
        let uids: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| matches!(e.at, Where::Unschedulable(since, _) if now.duration_since(since) >= MAX_UNSCHEDULABLE))
            .map(|(u, _)| u.clone())
            .collect();
        for uid in uids {
            self.release(&uid, now);
        }
    }

    /// When the earliest back-off ends.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Pending pods waiting as unschedulable.
    pub fn unschedulable_count(&self) -> usize {
        self.pods.values().filter(|e| matches!(e.at, Where::Unschedulable(..))).count()
    }

    pub fn uids(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }
}

/// Every filter bit: a change that may help anyone.
pub const ALL: u16 = u16::MAX;
/// Pods leaving nodes free resources, ports and spread/anti-affinity room.
pub const POD_REMOVED: u16 = plugin::RESOURCES | plugin::PORTS | plugin::INTER_POD | plugin::SPREAD | plugin::OTHER;
/// Pods arriving on nodes may satisfy affinity or change spread.
pub const POD_ADDED: u16 = plugin::INTER_POD | plugin::SPREAD;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::algorithm::tests::pod_json;
    use serde_json::json;

    fn p(name: &str, prio: i32) -> Arc<PodInfo> {
        pod_json(name, json!({"spec": {"priority": prio}}))
    }

    #[test]
    fn priority_then_arrival() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.upsert(p("a", 0), now);
        q.upsert(p("b", 10), now);
        q.upsert(p("c", 0), now);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(now)).map(|i| i.name.clone()).collect();
        assert_eq!(order, vec!["b", "a", "c"]);
        assert!(q.pop(now).is_none());
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_helpful_change_and_back_off() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.upsert(p("a", 0), now);
        assert!(q.pop(now).is_some());
        q.unschedulable("a", plugin::RESOURCES, now);
        assert!(!q.has_active(now));
        // A change that cannot help (a pod arriving) leaves it waiting.
        q.move_unschedulable(POD_ADDED, now);
        assert!(!q.has_active(now + Duration::from_secs(20)));
        // A pod leaving may help, after the back-off of 1 s.
        q.move_unschedulable(POD_REMOVED, now);
        assert!(!q.has_active(now));
        assert_eq!(q.next_backoff(), Some(now + INITIAL_BACKOFF));
        assert!(q.has_active(now + INITIAL_BACKOFF));
        assert!(q.pop(now + INITIAL_BACKOFF).is_some());
        // Second failure: 2 s.
        let later = now + INITIAL_BACKOFF;
        q.unschedulable("a", plugin::RESOURCES, later);
        q.move_unschedulable(ALL, later);
        assert!(!q.has_active(later + Duration::from_millis(1500)));
        assert!(q.has_active(later + Duration::from_secs(2)));
    }

    #[test]
    fn waiting_too_long_or_changing_retries() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.upsert(p("a", 0), now);
        q.pop(now);
        q.unschedulable("a", plugin::TAINTS, now);
        q.flush_unschedulable(now + Duration::from_secs(10));
        assert!(!q.has_active(now + Duration::from_secs(10)));
        q.flush_unschedulable(now + MAX_UNSCHEDULABLE);
        assert!(q.has_active(now + MAX_UNSCHEDULABLE));
        q.pop(now + MAX_UNSCHEDULABLE);
        let t = now + MAX_UNSCHEDULABLE;
        q.unschedulable("a", plugin::TAINTS, t);
        // Same pod, status-only update: stays; new tolerations: retried.
        q.upsert(p("a", 0), t);
        assert!(!q.has_active(t + Duration::from_secs(60)));
        q.upsert(pod_json("a", json!({"spec": {"priority": 0, "tolerations": [{"operator": "Exists"}]}})), t + Duration::from_secs(60));
        assert!(q.has_active(t + Duration::from_secs(60)));
    }

    #[test]
    fn gated_pods_wait_for_their_gates_to_go() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.upsert(pod_json("g", json!({"spec": {"schedulingGates": [{"name": "x"}]}})), now);
        assert!(q.pop(now).is_none());
        assert!(q.is_gated("g"));
        q.upsert(p("g", 0), now);
        assert!(q.pop(now).is_some());
    }
}
