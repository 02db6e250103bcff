//! Services on the API side: ClusterIP and NodePort allocation, and the
//! `kubernetes` Service of the API server itself.
//!
//! Owns: which service IPs (from the service CIDR) and node ports (from the
//! NodePort range) are taken, by which Service (its uid). The truth is the
//! stored Services: the allocations are rebuilt from them when the API
//! server starts and then kept in memory under a lock, so concurrent
//! creates never get the same address and a restart never forgets one.
//! Create, update and delete of a Service go through [`Txn`]: values are
//! reserved before the store write and released if it fails; values a
//! Service no longer uses are released only once its write is stored.
//! Must not: write Services itself (except the `kubernetes` one in
//! [`kubernetes`]) or know about endpoints.

pub mod kubernetes;
mod range;
mod spec;

use super::status::ApiError;
use crate::field_error::FieldError;
use crate::registry::Resource;
use crate::store::Store;
use range::{Range, RangeError};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

/// Storage prefix of Services.
const SERVICES_PREFIX: &str = "/core/services/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Ip(u32),
    Port(u32),
}

struct State {
    ips: Range,
    ports: Range,
}

impl State {
    fn release(&mut self, item: Item, owner: &str) {
        match item {
            Item::Ip(v) => self.ips.release(v, owner),
            Item::Port(v) => self.ports.release(v, owner),
        }
    }
    fn owned_by(&self, owner: &str) -> Vec<Item> {
        let mut out: Vec<Item> = self.ips.owned_by(owner).into_iter().map(Item::Ip).collect();
        out.extend(self.ports.owned_by(owner).into_iter().map(Item::Port));
        out
    }
}

/// The service IPs and node ports in use.
pub struct Allocations {
    state: Mutex<State>,
    /// The service CIDR as configured, for messages.
    cidr: String,
    port_range: (u16, u16),
}

fn is_service(res: &Resource) -> bool {
    res.group.is_empty() && res.kind == "Service"
}

fn random() -> u64 {
    let b = uuid::Uuid::new_v4().as_u128();
    (b >> 64) as u64 ^ b as u64
}

impl Allocations {
    /// Empty allocations for `config`'s service CIDR and NodePort range.
    pub fn new(config: &crate::config::ClusterConfig) -> Self {
        let (net, prefix) = crate::config::parse_cidr(&config.service_cidr).unwrap_or((Ipv4Addr::new(10, 43, 0, 0), 16));
        let (from, to) = config.node_port_range;
        Self {
            state: Mutex::new(State { ips: Range::for_network(net, prefix), ports: Range::for_ports(from, to) }),
            cidr: format!("{net}/{prefix}"),
            port_range: (from, to),
        }
    }

    /// Allocations for `config`, with every value the stored Services hold.
    pub async fn load(store: &dyn Store, config: &crate::config::ClusterConfig) -> Result<Self, ApiError> {
        let me = Self::new(config);
        let listed = store.list(SERVICES_PREFIX, None, None).await?;
        for kv in &listed.items {
            match serde_json::from_slice::<Value>(&kv.value) {
                Ok(svc) => me.take_stored(&svc),
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "stored service is corrupt; its allocations are not known"),
            }
        }
        let st = me.lock();
        tracing::info!(services = listed.items.len(), ips = st.ips.used(), node_ports = st.ports.used(), "service allocations rebuilt");
        drop(st);
        Ok(me)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record what a stored Service holds.
    fn take_stored(&self, svc: &Value) {
        let uid = super::object::uid(svc).unwrap_or("").to_string();
        let name = format!("{}/{}", super::object::namespace(svc).unwrap_or(""), super::object::name(svc).unwrap_or(""));
        let mut st = self.lock();
        let ips = svc.pointer("/spec/clusterIPs").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut ips: Vec<String> = ips.iter().filter_map(Value::as_str).map(str::to_string).collect();
        ips.push(spec::cluster_ip(svc).to_string());
        for ip in ips.iter().filter_map(|s| s.parse::<Ipv4Addr>().ok()) {
            if let Err(e) = st.ips.allocate(u32::from(ip), &uid) {
                tracing::warn!(service = %name, %ip, error = ?e, "stored service IP is outside the range or taken twice");
            }
        }
        let mut ports: Vec<i64> = spec::ports(svc).iter().map(|p| spec::int(p, "nodePort")).collect();
        ports.push(spec::int(svc.get("spec").unwrap_or(&Value::Null), "healthCheckNodePort"));
        for p in ports.into_iter().filter(|p| *p > 0) {
            if let Err(e) = st.ports.allocate(p as u32, &uid) {
                tracing::warn!(service = %name, port = p, error = ?e, "stored node port is outside the range or taken twice");
            }
        }
    }

    /// Give `svc` (with its uid set) what it asks for: fill in a cluster IP
    /// and node ports where unset, check the requested ones. Values the
    /// service already holds stay; on commit, those it no longer uses go.
    fn assign(&self, svc: &mut Value) -> Result<Txn<'_>, ApiError> {
        let uid = super::object::uid(svc).unwrap_or("").to_string();
        let name = super::object::name(svc).unwrap_or("").to_string();
        let mut txn = Txn { alloc: self, uid: uid.clone(), reserved: Vec::new(), keep: Vec::new(), release_unkept: true, done: false };
        let invalid = |errs: Vec<FieldError>| ApiError::invalid("Service", "", &name, &errs);
        let mut st = self.lock();
        if spec::needs_cluster_ip(svc) {
            match spec::cluster_ip(svc).to_string().as_str() {
                "None" => {}
                "" => {
                    let v = st.ips.allocate_next(&uid, random()).map_err(|_| ApiError::internal("failed to allocate a serviceIP: range is full"))?;
                    txn.reserved.push(Item::Ip(v));
                    txn.keep.push(Item::Ip(v));
                    let ip = Ipv4Addr::from(v).to_string();
                    if let Some(m) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                        m.insert("clusterIP".into(), json!(ip));
                        m.insert("clusterIPs".into(), json!([ip]));
                    }
                }
                ip => {
                    let fail = |why: String| {
                        let raw = format!("[]string{{\"{ip}\"}}: failed to allocate IP {ip}: {why}");
                        invalid(vec![FieldError::new(crate::field_error::ErrorType::Invalid, "spec.clusterIPs", None, raw)])
                    };
                    let not_in_range = || fail(format!("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}", self.cidr));
                    let v = u32::from(ip.parse::<Ipv4Addr>().map_err(|_| not_in_range())?);
                    match st.ips.allocate(v, &uid) {
                        Ok(true) => txn.reserved.push(Item::Ip(v)),
                        Ok(false) => {}
                        Err(RangeError::NotInRange) => return Err(not_in_range()),
                        Err(_) => return Err(fail("provided IP is already allocated".into())),
                    }
                    txn.keep.push(Item::Ip(v));
                }
            }
        }
        let port_error = |field: String, np: i64, e: RangeError| match e {
            RangeError::NotInRange => invalid(vec![FieldError::invalid(
                field,
                json!(np),
                format!("provided port is not in the valid range. The range of valid ports is {}-{}", self.port_range.0, self.port_range.1),
            )]),
            RangeError::Allocated => invalid(vec![FieldError::invalid(field, json!(np), "provided port is already allocated")]),
            RangeError::Full => ApiError::internal("failed to allocate a nodePort: range is full"),
        };
        let take = |st: &mut State, txn: &mut Txn, field: String, np: i64| -> Result<i64, ApiError> {
            if np == 0 {
                let v = st.ports.allocate_next(&uid, random()).map_err(|e| port_error(field, 0, e))?;
                txn.reserved.push(Item::Port(v));
                txn.keep.push(Item::Port(v));
                return Ok(i64::from(v));
            }
            let v = u32::try_from(np).map_err(|_| port_error(field.clone(), np, RangeError::NotInRange))?;
            if st.ports.allocate(v, &uid).map_err(|e| port_error(field, np, e))? {
                txn.reserved.push(Item::Port(v));
            }
            txn.keep.push(Item::Port(v));
            Ok(np)
        };
        if spec::needs_node_ports(svc) {
            let allocate_all = spec::should_allocate_node_ports(svc);
            let ports: Vec<Value> = spec::ports(svc).to_vec();
            let mut by_port: Vec<(i64, i64)> = Vec::new();
            let mut chosen: Vec<i64> = Vec::new();
            for (i, p) in ports.iter().enumerate() {
                let (port, asked) = (spec::int(p, "port"), spec::int(p, "nodePort"));
                if asked == 0 && !allocate_all {
                    chosen.push(0);
                    continue;
                }
                let field = format!("spec.ports[{i}].nodePort");
                let np = if asked != 0 {
                    take(&mut st, &mut txn, field, asked)?
                } else if let Some((_, np)) = by_port.iter().find(|(p, _)| *p == port) {
                    *np
                } else if let Some(later) = ports[i + 1..].iter().find(|q| spec::int(q, "port") == port && spec::int(q, "nodePort") != 0) {
                    // A later port of the same number asks for a node port: share it.
                    let np = spec::int(later, "nodePort");
                    take(&mut st, &mut txn, field, np)?
                } else {
                    take(&mut st, &mut txn, field, 0)?
                };
                if !by_port.iter().any(|(p, _)| *p == port) {
                    by_port.push((port, np));
                }
                chosen.push(np);
            }
            if let Some(arr) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for (p, np) in arr.iter_mut().zip(chosen) {
                    if let (true, Some(o)) = (np != 0, p.as_object_mut()) {
                        o.insert("nodePort".into(), json!(np));
                    }
                }
            }
        }
        if spec::needs_health_check_node_port(svc) {
            let asked = spec::int(svc.get("spec").unwrap_or(&Value::Null), "healthCheckNodePort");
            let np = take(&mut st, &mut txn, "spec.healthCheckNodePort".into(), asked)?;
            if let Some(m) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                m.insert("healthCheckNodePort".into(), json!(np));
            }
        }
        drop(st);
        Ok(txn)
    }

    /// A new Service: what it needs, reserved until the create is stored.
    pub(crate) fn on_create(&self, res: &Resource, svc: &mut Value) -> Result<Option<Txn<'_>>, ApiError> {
        if !is_service(res) {
            return Ok(None);
        }
        self.assign(svc).map(Some)
    }

    /// An update of `old` into `new`: take what `new` needs; on commit,
    /// release what only `old` used.
    pub(crate) fn on_update(&self, res: &Resource, new: &mut Value) -> Result<Option<Txn<'_>>, ApiError> {
        if !is_service(res) {
            return Ok(None);
        }
        self.assign(new).map(Some)
    }

    /// A Service is gone from the store: everything it held is free.
    pub(crate) fn on_deleted(&self, res: &Resource, svc: &Value) {
        if !is_service(res) {
            return;
        }
        let uid = super::object::uid(svc).unwrap_or("");
        let mut st = self.lock();
        for item in st.owned_by(uid) {
            st.release(item, uid);
        }
    }

    /// Who holds `ip` (a Service uid), for tests and diagnostics.
    pub fn ip_owner(&self, ip: Ipv4Addr) -> Option<String> {
        self.lock().ips.owner(u32::from(ip)).map(str::to_string)
    }

    pub fn port_owner(&self, port: u16) -> Option<String> {
        self.lock().ports.owner(u32::from(port)).map(str::to_string)
    }
}

/// Allocations made for one write. Dropped without [`Txn::commit`] (the
/// write failed, or was a dry run), it gives back what it reserved.
pub struct Txn<'a> {
    alloc: &'a Allocations,
    uid: String,
    reserved: Vec<Item>,
    keep: Vec<Item>,
    release_unkept: bool,
    done: bool,
}

impl Txn<'_> {
    /// The write is stored: values the Service held but no longer uses are freed.
    pub fn commit(mut self) {
        self.done = true;
        if self.release_unkept {
            let mut st = self.alloc.lock();
            for item in st.owned_by(&self.uid) {
                if !self.keep.contains(&item) {
                    st.release(item, &self.uid);
                }
            }
        }
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.alloc.lock();
        for item in &self.reserved {
            st.release(*item, &self.uid);
        }
    }
}

/// Before validating an update of a Service: drop what the new type does
/// not use and keep allocated values the client left out.
pub(crate) fn prepare_update(res: &Resource, old: &Value, new: &mut Value) {
    if is_service(res) {
        spec::drop_type_dependent_fields(old, new);
        spec::patch_allocated_values(old, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> Resource {
        crate::registry::Registry::new().table().get("", "v1", "services").map(|r| (*r).clone()).expect("services")
    }

    fn svc(uid: &str, spec: Value) -> Value {
        json!({"metadata": {"name": format!("s-{uid}"), "namespace": "default", "uid": uid}, "spec": spec})
    }

    fn alloc() -> Allocations {
        Allocations::new(&crate::config::ClusterConfig::default())
    }

    fn message(e: ApiError) -> String {
        e.message
    }

    #[test]
    fn cluster_ips_come_from_the_range_and_requested_ones_are_checked() {
        let a = alloc();
        let r = res();
        let mut s1 = svc("u1", json!({"type": "ClusterIP", "clusterIP": "10.43.0.5", "ports": [{"port": 80}]}));
        a.on_create(&r, &mut s1).expect("ok").expect("txn").commit();
        let mut s2 = svc("u2", json!({"type": "ClusterIP", "clusterIP": "10.43.0.5", "ports": [{"port": 80}]}));
        let e = message(a.on_create(&r, &mut s2).err().expect("duplicate refused"));
        assert_eq!(e, "Service \"s-u2\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.5\"}: failed to allocate IP 10.43.0.5: provided IP is already allocated");
        let mut s3 = svc("u3", json!({"type": "ClusterIP", "clusterIP": "1.2.3.4", "ports": [{"port": 80}]}));
        let e = message(a.on_create(&r, &mut s3).err().expect("out of range refused"));
        assert!(e.ends_with("spec.clusterIPs: Invalid value: []string{\"1.2.3.4\"}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.43.0.0/16"), "{e}");
        let mut s4 = svc("u4", json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        a.on_create(&r, &mut s4).expect("ok").expect("txn").commit();
        let ip: Ipv4Addr = s4["spec"]["clusterIP"].as_str().expect("ip").parse().expect("ipv4");
        assert_eq!(s4["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert!(ip.octets()[0] == 10 && ip.octets()[1] == 43 && ip.octets()[2] >= 1, "{ip} from the upper band");
        assert_eq!(a.ip_owner(ip).as_deref(), Some("u4"));
    }

    #[test]
    fn headless_and_external_name_services_get_no_ip() {
        let a = alloc();
        let mut h = svc("h", json!({"type": "ClusterIP", "clusterIP": "None"}));
        a.on_create(&res(), &mut h).expect("ok").expect("txn").commit();
        assert_eq!(h["spec"]["clusterIP"], json!("None"));
        let mut x = svc("x", json!({"type": "ExternalName", "externalName": "example.com"}));
        a.on_create(&res(), &mut x).expect("ok").expect("txn").commit();
        assert!(x["spec"].get("clusterIP").is_none());
        assert_eq!(a.lock().ips.used(), 0);
    }

    #[test]
    fn failed_writes_give_back_what_they_reserved_and_deletes_release() {
        let a = alloc();
        let r = res();
        let mut s = svc("u1", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}));
        let txn = a.on_create(&r, &mut s).expect("ok").expect("txn");
        drop(txn);
        assert_eq!(a.port_owner(30080), None);
        assert_eq!(a.lock().ips.used(), 0);
        a.on_create(&r, &mut s).expect("ok").expect("txn").commit();
        assert_eq!(a.port_owner(30080).as_deref(), Some("u1"));
        let mut other = svc("u2", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}));
        let e = message(a.on_create(&r, &mut other).err().expect("taken"));
        assert!(e.ends_with("spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"), "{e}");
        assert_eq!(a.lock().ips.used(), 1, "the IP reserved before the port failed is given back");
        a.on_deleted(&r, &s);
        assert_eq!(a.port_owner(30080), None);
        a.on_create(&r, &mut other).expect("reusable after delete").expect("txn").commit();
    }

    #[test]
    fn node_ports_are_allocated_per_port_and_checked_against_the_range() {
        let a = alloc();
        let r = res();
        let mut s = svc("u1", json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [{"name": "a", "port": 53, "protocol": "TCP"}, {"name": "b", "port": 53, "protocol": "UDP"}, {"name": "c", "port": 80}]}));
        a.on_create(&r, &mut s).expect("ok").expect("txn").commit();
        let nps: Vec<i64> = s["spec"]["ports"].as_array().expect("ports").iter().map(|p| p["nodePort"].as_i64().expect("np")).collect();
        assert_eq!(nps[0], nps[1], "same port number, different protocols share the node port");
        assert_ne!(nps[0], nps[2]);
        assert!(nps.iter().all(|p| (30000..=32767).contains(p)));
        let hc = s["spec"]["healthCheckNodePort"].as_i64().expect("health check node port");
        assert!((30000..=32767).contains(&hc) && !nps.contains(&hc));
        let mut bad = svc("u2", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}));
        let e = message(a.on_create(&r, &mut bad).err().expect("out of range"));
        assert!(e.ends_with("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"), "{e}");
    }

    #[test]
    fn updates_keep_what_stays_and_release_what_goes_on_commit() {
        let a = alloc();
        let r = res();
        let mut old = svc("u1", json!({"type": "NodePort", "externalTrafficPolicy": "Cluster", "ports": [{"port": 80, "nodePort": 30080}]}));
        a.on_create(&r, &mut old).expect("ok").expect("txn").commit();
        let ip = old["spec"]["clusterIP"].clone();
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        prepare_update(&r, &old, &mut new);
        let txn = a.on_update(&r, &mut new).expect("ok").expect("txn");
        assert_eq!(a.port_owner(30080).as_deref(), Some("u1"), "held until the update is stored");
        txn.commit();
        assert_eq!(a.port_owner(30080), None);
        assert_eq!(new["spec"]["clusterIP"], ip);
        // To ExternalName: the IP goes too.
        let mut ext = new.clone();
        ext["spec"]["type"] = json!("ExternalName");
        ext["spec"]["externalName"] = json!("example.com");
        prepare_update(&r, &new, &mut ext);
        a.on_update(&r, &mut ext).expect("ok").expect("txn").commit();
        assert_eq!(a.lock().ips.used(), 0);
    }

    #[test]
    fn concurrent_creates_never_share_an_ip() {
        let a = std::sync::Arc::new(alloc());
        let r = res();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let a = a.clone();
                let r = r.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .map(|i| {
                            let mut s = svc(&format!("t{t}-{i}"), json!({"type": "NodePort", "ports": [{"port": 80}]}));
                            a.on_create(&r, &mut s).expect("ok").expect("txn").commit();
                            (s["spec"]["clusterIP"].as_str().unwrap_or("").to_string(), s["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<(String, i64)> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
        let ips: std::collections::HashSet<&str> = all.iter().map(|(ip, _)| ip.as_str()).collect();
        let ports: std::collections::HashSet<i64> = all.iter().map(|(_, p)| *p).collect();
        assert_eq!(ips.len(), 1600);
        assert_eq!(ports.len(), 1600);
    }

    #[tokio::test]
    async fn allocations_are_rebuilt_from_the_stored_services() {
        let dir = std::env::temp_dir().join(format!("coracle-alloc-{}", uuid::Uuid::new_v4()));
        let store = crate::store::sqlite::SqliteStore::open(&dir.join("state.db")).expect("store");
        let stored = svc("u1", json!({"type": "LoadBalancer", "clusterIP": "10.43.7.7", "clusterIPs": ["10.43.7.7"], "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 31999, "ports": [{"port": 80, "nodePort": 30080}]}));
        let bytes = serde_json::to_vec(&stored).expect("json");
        store.write(crate::store::Write::Create { key: format!("{SERVICES_PREFIX}default/s-u1"), value: bytes }).await.expect("write");
        let a = Allocations::load(&store, &crate::config::ClusterConfig::default()).await.expect("load");
        assert_eq!(a.ip_owner(Ipv4Addr::new(10, 43, 7, 7)).as_deref(), Some("u1"));
        assert_eq!(a.port_owner(30080).as_deref(), Some("u1"));
        assert_eq!(a.port_owner(31999).as_deref(), Some("u1"));
        let mut dup = svc("u2", json!({"type": "ClusterIP", "clusterIP": "10.43.7.7", "ports": [{"port": 80}]}));
        assert!(a.on_create(&res(), &mut dup).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
