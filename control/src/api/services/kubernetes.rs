//! The `kubernetes` Service in `default`, and its Endpoints and
//! EndpointSlice pointing at this API server, as upstream's API server
//! keeps them (its "master endpoints" reconciler): the Service gets the
//! first address of the service CIDR and port 443 (`https`) to the API
//! server's port; the Endpoints carry `endpointslice.kubernetes.io/skip-mirror`
//! and the EndpointSlice is named `kubernetes` like the Service. Re-checked
//! every 10 s, so a deleted or edited object comes back.

use super::super::request::Query;
use super::super::status::ApiError;
use super::super::write::{self, Change};
use super::super::ApiServer;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const NAMESPACE: &str = "default";
const NAME: &str = "kubernetes";
const MANAGER: &str = "kube-apiserver";
const INTERVAL: Duration = Duration::from_secs(10);

/// The address clients reach this server on: the bound one, or for a
/// wildcard bind a non-loopback address of this host (127.0.0.1 if none).
pub fn advertise_address(bound: IpAddr) -> Ipv4Addr {
    match bound {
        IpAddr::V4(v4) if !v4.is_unspecified() => v4,
        _ => host_ip().unwrap_or(Ipv4Addr::LOCALHOST),
    }
}

/// The source address the host would use towards the outside (no packet is sent).
fn host_ip() -> Option<Ipv4Addr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("203.0.113.1:9").ok()?;
    match sock.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// First address of the service CIDR (10.43.0.1 for 10.43.0.0/16).
pub fn service_ip(service_cidr: &str) -> Ipv4Addr {
    let (net, _) = crate::config::parse_cidr(service_cidr).unwrap_or((Ipv4Addr::new(10, 43, 0, 0), 16));
    Ipv4Addr::from(u32::from(net).saturating_add(1))
}

pub fn desired_service(service_cidr: &str, port: u16) -> Value {
    let ip = service_ip(service_cidr).to_string();
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
        },
    })
}

pub fn desired_endpoints(ip: Ipv4Addr, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    })
}

pub fn desired_slice(ip: Ipv4Addr, port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    })
}

/// Create `desired` or bring the listed top-level fields of the stored
/// object (and its labels) in line with it.
async fn ensure(server: &ApiServer, group: &str, version: &str, plural: &str, desired: Value, fields: &'static [&'static str]) -> Result<(), ApiError> {
    let table = server.registry.table();
    let Some(res) = table.get(group, version, plural) else { return Ok(()) };
    let mut query = Query::default();
    query.0.insert("fieldManager".into(), MANAGER.into());
    match write::get(server, &res, Some(NAMESPACE), NAME).await {
        Ok(_) => {
            let want = desired.clone();
            let f = move |current: &Value| -> Result<Value, ApiError> {
                let mut out = current.clone();
                for path in fields {
                    let (parent, key) = path.rsplit_once('/').unwrap_or(("", path));
                    let target = if parent.is_empty() { Some(&mut out) } else { out.pointer_mut(&format!("/{parent}")) };
                    if let (Some(target), Some(v)) = (target, want.pointer(&format!("/{path}"))) {
                        if let Some(o) = target.as_object_mut() {
                            o.insert(key.to_string(), v.clone());
                        }
                    }
                }
                if let Some(labels) = want.pointer("/metadata/labels").and_then(Value::as_object) {
                    let m = super::super::object::meta_mut(&mut out);
                    let l = m.entry("labels").or_insert_with(|| json!({}));
                    if let Some(l) = l.as_object_mut() {
                        for (k, v) in labels {
                            l.insert(k.clone(), v.clone());
                        }
                    }
                }
                Ok(out)
            };
            write::update(server, &res, Some(NAMESPACE), NAME, None, &Change::Patch(Box::new(f)), MANAGER, &query).await?;
            Ok(())
        }
        Err(e) if e.code == 404 => match write::create(server, &res, Some(NAMESPACE), desired, &query).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// One pass over the three objects.
pub async fn reconcile(server: &ApiServer, ip: Ipv4Addr, port: u16) -> Result<(), ApiError> {
    let svc = desired_service(&server.config.service_cidr, port);
    ensure(server, "", "v1", "services", svc, &["spec/ports", "spec/type"]).await?;
    ensure(server, "", "v1", "endpoints", desired_endpoints(ip, port), &["subsets"]).await?;
    ensure(server, "discovery.k8s.io", "v1", "endpointslices", desired_slice(ip, port), &["addressType", "endpoints", "ports"]).await?;
    Ok(())
}

/// Keep the `kubernetes` Service and its endpoints pointing at `addr`
/// (the address this server listens on). The first pass is done before
/// returning; the loop runs as a task.
pub async fn start(server: Arc<ApiServer>, addr: SocketAddr) {
    let ip = advertise_address(addr.ip());
    let port = addr.port();
    if let Err(e) = reconcile(&server, ip, port).await {
        tracing::warn!(error = %e.message, "the kubernetes service could not be set up; retrying");
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(INTERVAL).await;
            if let Err(e) = reconcile(&server, ip, port).await {
                tracing::warn!(error = %e.message, "reconciling the kubernetes service failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_takes_the_first_address_of_the_range() {
        assert_eq!(service_ip("10.43.0.0/16"), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(service_ip("10.96.0.0/12"), Ipv4Addr::new(10, 96, 0, 1));
        let svc = desired_service("10.43.0.0/16", 6443);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], json!(6443));
        assert_eq!(advertise_address(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5))), Ipv4Addr::new(192, 168, 1, 5));
        assert!(!advertise_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).is_unspecified());
    }

    #[tokio::test]
    async fn reconcile_creates_and_repairs_the_objects() {
        let dir = std::env::temp_dir().join(format!("coracle-k8s-svc-{}", uuid::Uuid::new_v4()));
        let store = Arc::new(crate::store::sqlite::SqliteStore::open(&dir.join("state.db")).expect("store"));
        let server = ApiServer::new(store).await.expect("server");
        server.bootstrap().await.expect("bootstrap");
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        reconcile(&server, ip, 6443).await.expect("first pass");
        reconcile(&server, ip, 6443).await.expect("second pass is a no-op");
        let table = server.registry.table();
        let svcs = table.get("", "v1", "services").expect("services");
        let svc = write::get(&server, &svcs, Some(NAMESPACE), NAME).await.expect("service");
        assert_eq!(svc["spec"]["clusterIP"], json!("10.43.0.1"));
        let rv = svc["metadata"]["resourceVersion"].clone();
        reconcile(&server, ip, 6444).await.expect("port moved");
        let svc = write::get(&server, &svcs, Some(NAMESPACE), NAME).await.expect("service");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], json!(6444));
        assert_ne!(svc["metadata"]["resourceVersion"], rv);
        let eps = table.get("", "v1", "endpoints").expect("endpoints");
        let ep = write::get(&server, &eps, Some(NAMESPACE), NAME).await.expect("endpoints");
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], json!(6444));
        let slices = table.get("discovery.k8s.io", "v1", "endpointslices").expect("slices");
        let slice = write::get(&server, &slices, Some(NAMESPACE), NAME).await.expect("slice");
        assert_eq!(slice["endpoints"][0]["addresses"], json!(["127.0.0.1"]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
