//! What each eviction signal starves, and the words of upstream's
//! eviction messages. Pure: no I/O here.

use crate::node::eviction::{Observations, Signal, Threshold};
use crate::quantity::format_bytes;

/// The resource pods are ranked by for a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    /// Bytes on the node's filesystems: writable layers, logs, emptyDirs.
    EphemeralStorage,
    Inodes,
    Pids,
}

impl Resource {
    pub fn of(signal: Signal) -> Resource {
        match signal {
            Signal::MemoryAvailable => Resource::Memory,
            Signal::NodefsAvailable | Signal::ImagefsAvailable => Resource::EphemeralStorage,
            Signal::NodefsInodesFree | Signal::ImagefsInodesFree => Resource::Inodes,
            Signal::PidAvailable => Resource::Pids,
        }
    }

    /// As upstream names it in messages and events.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::EphemeralStorage => "ephemeral-storage",
            Resource::Inodes => "inodes",
            Resource::Pids => "pids",
        }
    }

    /// Whether pods using more than they request go first (upstream ranks
    /// pid pressure by priority and usage alone: nobody requests pids).
    pub fn ranks_by_requests(self) -> bool {
        matches!(self, Resource::Memory | Resource::EphemeralStorage)
    }

    /// The name of a container's request for this resource.
    pub fn request_name(self) -> Option<&'static str> {
        match self {
            Resource::Memory => Some("memory"),
            Resource::EphemeralStorage => Some("ephemeral-storage"),
            _ => None,
        }
    }

    /// An amount of this resource as upstream prints it.
    pub fn format(self, v: i128) -> String {
        match self {
            Resource::Memory | Resource::EphemeralStorage => format_bytes(v),
            Resource::Inodes | Resource::Pids => v.to_string(),
        }
    }
}

/// The signal to act on when several are crossed: memory first, then the
/// filesystems, then pids (the order of [`Signal::ALL`]).
pub fn first(crossed: &[Signal]) -> Option<Signal> {
    crossed.iter().copied().min()
}

/// One container's part in the message: name, usage, request.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUse {
    pub name: String,
    pub usage: i128,
    pub request: i128,
}

/// Upstream's eviction message: the resource, the threshold and what was
/// available, and each container using more than it requested.
pub fn message(signal: Signal, thresholds: &[Threshold], obs: &Observations, containers: &[ContainerUse]) -> String {
    let r = Resource::of(signal);
    let mut m = format!("The node was low on resource: {}. ", r.name());
    let t = thresholds.iter().find(|t| t.signal == signal);
    if let (Some(t), Some(o)) = (t, obs.get(signal)) {
        let quantity = r.format(t.absolute(o.capacity).round() as i128);
        m += &format!("Threshold quantity: {quantity}, available: {}. ", r.format(o.available.round() as i128));
    }
    for c in containers.iter().filter(|c| c.usage > c.request) {
        m += &format!(
            "Container {} was using {}, request is {}, has larger consumption of {}. ",
            c.name,
            r.format(c.usage),
            r.format(c.request),
            r.name()
        );
    }
    m
}

/// The node event's message.
pub fn threshold_met(signal: Signal) -> String {
    format!("Attempting to reclaim {}", Resource::of(signal).name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::eviction::{parse, Observed};

    #[test]
    fn message_reads_as_upstreams() {
        let t = parse("memory.available<100Mi,nodefs.available<10%").expect("test thresholds");
        let mib = 1024.0 * 1024.0;
        let obs = Observations(vec![
            (Signal::MemoryAvailable, Observed { available: 50.0 * mib, capacity: 1000.0 * mib }),
            (Signal::NodefsAvailable, Observed { available: 1000.0, capacity: 10240.0 * 1024.0 }),
        ]);
        let c = |name: &str, usage: i128, request: i128| ContainerUse { name: name.into(), usage, request };
        let m = message(Signal::MemoryAvailable, &t, &obs, &[c("c", 70 << 20, 0), c("ok", 1 << 20, 2 << 20)]);
        assert_eq!(
            m,
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container c was using 70Mi, request is 0, has larger consumption of memory. "
        );
        let m = message(Signal::NodefsAvailable, &t, &obs, &[]);
        assert_eq!(m, "The node was low on resource: ephemeral-storage. Threshold quantity: 1Mi, available: 1000. ");
        // No observation: no threshold part.
        assert_eq!(message(Signal::PidAvailable, &t, &obs, &[]), "The node was low on resource: pids. ");
        assert_eq!(threshold_met(Signal::ImagefsAvailable), "Attempting to reclaim ephemeral-storage");
    }

    #[test]
    fn memory_is_reclaimed_first() {
        assert_eq!(first(&[Signal::PidAvailable, Signal::NodefsAvailable, Signal::MemoryAvailable]), Some(Signal::MemoryAvailable));
        assert_eq!(first(&[Signal::PidAvailable, Signal::ImagefsAvailable]), Some(Signal::ImagefsAvailable));
        assert_eq!(first(&[]), None);
    }
}
