//! postStart and preStop handlers (exec, httpGet, sleep), run to
//! completion. Failures come back with upstream's message; the events
//! (`FailedPostStartHook`, `FailedPreStopHook`), killing the container
//! after a failed postStart and the preStop deadline are the pod worker's.

use super::{action, exec, http, ProbeTarget};
use crate::context::Context;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use std::time::Duration;

/// Upstream's `format.Pod`: `name_namespace(uid)`.
fn pod_text(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or("default"),
        m.uid.as_deref().unwrap_or_default()
    )
}

/// Runs one lifecycle handler of `target`'s container.
pub async fn run_hook(ctx: &Context, target: &ProbeTarget, handler: &LifecycleHandler) -> Result<(), String> {
    let pod = pod_text(&target.pod);
    let name = &target.container_name;
    let fallback;
    let container = match action::find_container(&target.pod, name) {
        Some((c, _)) => c,
        None => {
            fallback = Container { name: name.clone(), ..Default::default() };
            &fallback
        }
    };
    if let Some(e) = &handler.exec {
        let cmd = e.command.clone().unwrap_or_default();
        let shown = format!("[{}]", cmd.join(" "));
        let fail = |error: String, output: String| {
            format!("Exec lifecycle hook ({shown}) for Container {name:?} in Pod {pod:?} failed - error: {error}, message: {output:?}")
        };
        if cmd.is_empty() {
            return Err(fail("no command".into(), String::new()));
        }
        return match exec::exec_sync(ctx, &target.container_id, &cmd, None).await {
            Ok(r) if r.exit_code == 0 => Ok(()),
            Ok(r) => {
                let error = format!("command '{}' exited with {}: {}", cmd.join(" "), r.exit_code, String::from_utf8_lossy(&r.stderr));
                Err(fail(error, r.combined()))
            }
            Err(e) => Err(fail(e.to_string(), String::new())),
        };
    }
    if let Some(h) = &handler.http_get {
        let path = h.path.as_deref().unwrap_or("");
        let fail = |error: String| format!("HTTP lifecycle hook ({path}) for Container {name:?} in Pod {pod:?} failed - error: {error}");
        let get = action::http_get(target, container, h, http::HOOK_USER_AGENT).map_err(fail)?;
        // As upstream, only a transport error fails the hook, not the status.
        return get.send(None).await.map(|_| ()).map_err(fail);
    }
    if let Some(s) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
        return Ok(());
    }
    if handler.tcp_socket.is_some() {
        // Accepted by the API for compatibility; upstream's runner does nothing.
        return Ok(());
    }
    Err(format!("Cannot run handler for Container {name:?} in Pod {pod:?}: invalid handler"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HTTPGetAction, PodSpec, SleepAction};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ctx() -> Context {
        // Hooks that do not exec never touch the client or the runtime.
        let cfg = crate::AgentConfig::new("n1", std::env::temp_dir().join("coracle-hooks-test"));
        let client = kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().expect("test"))).expect("test");
        let cri = crate::cri::Cri::new(&cfg.cri_socket()).expect("test");
        let (_, health) = tokio::sync::watch::channel(crate::containerd::Health::Running { pid: 0 });
        Context { cfg, client, cri, runtime_health: health, started: std::time::Instant::now() }
    }

    fn target() -> ProbeTarget {
        let pod = Pod {
            metadata: ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
            spec: Some(PodSpec { containers: vec![Container { name: "c".into(), ..Default::default() }], ..Default::default() }),
            ..Default::default()
        };
        ProbeTarget {
            pod: Arc::new(pod),
            container_name: "c".into(),
            container_id: "id".into(),
            pod_ip: Some("127.0.0.1".parse().expect("test")),
            started_at: std::time::Instant::now(),
        }
    }

    #[tokio::test]
    async fn http_hook_gets_the_path_and_reports_transport_errors() {
        let ctx = ctx();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test");
        let port = listener.local_addr().expect("test").port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("test");
            let mut buf = vec![0u8; 2048];
            let n = s.read(&mut buf).await.expect("test");
            s.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n").await.expect("test");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let get = |port| LifecycleHandler {
            http_get: Some(HTTPGetAction { path: Some("/hook".into()), port: IntOrString::Int(port), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(run_hook(&ctx, &target(), &get(i32::from(port))).await, Ok(()));
        let req = server.await.expect("test");
        assert!(req.starts_with("GET /hook HTTP/1.1\r\n") && req.contains("User-Agent: kube-lifecycle/1.33\r\n"), "{req}");
        // The listener is gone: the port is closed now.
        let err = run_hook(&ctx, &target(), &get(i32::from(port))).await.expect_err("should fail");
        assert_eq!(
            err,
            format!(
                "HTTP lifecycle hook (/hook) for Container \"c\" in Pod \"p_ns(u1)\" failed - error: Get \"http://127.0.0.1:{port}/hook\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_hook_sleeps() {
        let ctx = ctx();
        let t0 = tokio::time::Instant::now();
        let h = LifecycleHandler { sleep: Some(SleepAction { seconds: 5 }), ..Default::default() };
        assert_eq!(run_hook(&ctx, &target(), &h).await, Ok(()));
        assert_eq!((tokio::time::Instant::now() - t0).as_secs(), 5);
        assert!(run_hook(&ctx, &target(), &LifecycleHandler::default()).await.is_err());
    }
}
