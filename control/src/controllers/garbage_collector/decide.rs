//! What to do with a dependent, given what its owners turned out to be —
//! the collector's decision, free of any I/O.

use super::graph::Owner;
use kube::api::PropagationPolicy;

/// An owner reference, verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not being deleted in the foreground.
    Solid,
    /// The owner does not exist (no object by that name, or another uid).
    Dangling,
    /// The owner is being deleted in the foreground, waiting for dependents.
    Waiting,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Nothing,
    /// Keep the object, but drop the references to these owner uids.
    DropRefs(Vec<String>),
    /// Delete the object; `unblock` first makes its references
    /// non-blocking (a cycle through foreground deletions would wait forever).
    Delete { policy: PropagationPolicy, unblock: bool },
}

/// What the object needs, as upstream's collector decides it:
/// - any solid owner keeps it (references to missing or waiting owners are dropped);
/// - owners waiting on it while it has dependents of its own: deleted in the
///   foreground, so the wait carries down the chain;
/// - otherwise it is deleted, honouring its own orphan/foreground finalizer.
pub fn decide(owners: &[(Owner, OwnerState)], has_dependents: bool, a_dependent_waits: bool, orphan: bool, foreground: bool) -> Action {
    if owners.is_empty() {
        return Action::Nothing;
    }
    let of = |state: OwnerState| -> Vec<String> { owners.iter().filter(|(_, s)| *s == state).map(|(o, _)| o.uid.clone()).collect() };
    let solid = of(OwnerState::Solid);
    let dangling = of(OwnerState::Dangling);
    let waiting = of(OwnerState::Waiting);
    if !solid.is_empty() {
        let mut drop: Vec<String> = dangling.into_iter().chain(waiting).collect();
        if drop.is_empty() {
            return Action::Nothing;
        }
        drop.sort();
        drop.dedup();
        return Action::DropRefs(drop);
    }
    if !waiting.is_empty() && has_dependents {
        return Action::Delete { policy: PropagationPolicy::Foreground, unblock: a_dependent_waits };
    }
    let policy = if orphan {
        PropagationPolicy::Orphan
    } else if foreground {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    Action::Delete { policy, unblock: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(uid: &str) -> Owner {
        Owner { uid: uid.into(), api_version: "v1".into(), kind: "ConfigMap".into(), name: uid.into(), block: false }
    }

    fn bg() -> Action {
        Action::Delete { policy: PropagationPolicy::Background, unblock: false }
    }

    #[test]
    fn one_solid_owner_keeps_the_object() {
        assert_eq!(decide(&[(o("a"), OwnerState::Solid)], false, false, false, false), Action::Nothing);
        assert_eq!(
            decide(&[(o("a"), OwnerState::Solid), (o("b"), OwnerState::Dangling), (o("c"), OwnerState::Waiting)], false, false, false, false),
            Action::DropRefs(vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn no_solid_owner_means_deletion() {
        assert_eq!(decide(&[(o("a"), OwnerState::Dangling)], false, false, false, false), bg());
        assert_eq!(decide(&[(o("a"), OwnerState::Dangling), (o("b"), OwnerState::Dangling)], true, false, false, false), bg());
        assert_eq!(
            decide(&[(o("a"), OwnerState::Dangling)], false, false, true, false),
            Action::Delete { policy: PropagationPolicy::Orphan, unblock: false }
        );
        assert_eq!(
            decide(&[(o("a"), OwnerState::Dangling)], false, false, false, true),
            Action::Delete { policy: PropagationPolicy::Foreground, unblock: false }
        );
        // A waiting owner and nothing below: plain deletion.
        assert_eq!(decide(&[(o("a"), OwnerState::Waiting)], false, false, false, false), bg());
    }

    #[test]
    fn foreground_carries_down_the_chain() {
        assert_eq!(
            decide(&[(o("a"), OwnerState::Waiting)], true, false, false, false),
            Action::Delete { policy: PropagationPolicy::Foreground, unblock: false }
        );
        assert_eq!(
            decide(&[(o("a"), OwnerState::Waiting)], true, true, false, false),
            Action::Delete { policy: PropagationPolicy::Foreground, unblock: true }
        );
    }

    #[test]
    fn no_owners_nothing_to_do() {
        assert_eq!(decide(&[], true, false, false, false), Action::Nothing);
    }
}
