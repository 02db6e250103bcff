//! `GET /containerLogs/NS/POD/CONTAINER`: a container's CRI log file as
//! `kubectl logs` prints it.
//!
//! Which container: the pod's status in the API (current container, or the
//! last terminated one for `previous=true`), with upstream's messages for
//! containers that have none yet. Which file: CRI `ContainerStatus.log_path`,
//! else the shared layout `logs_dir/NS_NAME_UID/CONTAINER/N.log`. `follow`
//! polls the file for growth and ends once the runtime reports the
//! container exited and the file is drained.

use super::cri_log::{tail_start, Formatter, Options};
use super::{text, Body};
use crate::context::Context;
use crate::cri::api;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Largest tail window read to find where the last N lines start.
const TAIL_WINDOW: u64 = 16 * 1024 * 1024;
const POLL: Duration = Duration::from_millis(100);
const STATE_CHECK: Duration = Duration::from_secs(1);

/// Why there are no logs to show (the kubelet answers 400 or 404).
#[derive(Debug, PartialEq)]
pub struct NoLogs {
    pub code: StatusCode,
    pub message: String,
}

fn bad(message: String) -> NoLogs {
    NoLogs { code: StatusCode::BAD_REQUEST, message }
}

/// The container ID (without `containerd://`) whose log to show, and the
/// restart count it ran as, decided from the pod's status like upstream's
/// kubelet does.
pub fn pick_container(pod: &Pod, container: &str, previous: bool) -> Result<(String, i32), NoLogs> {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    let all = [
        status.and_then(|s| s.container_statuses.as_ref()),
        status.and_then(|s| s.init_container_statuses.as_ref()),
        status.and_then(|s| s.ephemeral_container_statuses.as_ref()),
    ];
    let Some(cs): Option<&ContainerStatus> = all.into_iter().flatten().flatten().find(|c| c.name == container) else {
        return Err(bad(format!("container {container:?} in pod {name:?} is not available")));
    };
    let strip = |id: &str| id.split_once("://").map(|(_, rest)| rest).unwrap_or(id).to_string();
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let last_id = last.and_then(|t| t.container_id.as_deref()).filter(|id| !id.is_empty());
    let state = cs.state.as_ref();
    let restarts = cs.restart_count;
    if previous {
        return match last_id {
            Some(id) => Ok((strip(id), (restarts - 1).max(0))),
            None => Err(bad(format!("previous terminated container {container:?} in pod {name:?} not found"))),
        };
    }
    if state.and_then(|s| s.running.as_ref()).is_some() {
        if let Some(id) = cs.container_id.as_deref().filter(|id| !id.is_empty()) {
            return Ok((strip(id), restarts));
        }
    }
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        return match (t.container_id.as_deref().filter(|id| !id.is_empty()), last_id) {
            (Some(id), _) => Ok((strip(id), restarts)),
            (None, Some(id)) => Ok((strip(id), (restarts - 1).max(0))),
            (None, None) => Err(bad(format!("container {container:?} in pod {name:?} is terminated"))),
        };
    }
    if let Some(id) = last_id {
        return Ok((strip(id), (restarts - 1).max(0)));
    }
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = w.reason.as_deref().unwrap_or("");
        return Err(bad(match reason {
            "ErrImagePull" => format!("container {container:?} in pod {name:?} is waiting to start: image can't be pulled"),
            "ImagePullBackOff" => format!("container {container:?} in pod {name:?} is waiting to start: trying and failing to pull image"),
            _ => format!("container {container:?} in pod {name:?} is waiting to start: {reason}"),
        }));
    }
    Err(bad(format!("container {container:?} in pod {name:?} is waiting to start - no logs yet")))
}

pub async fn serve(ctx: &Arc<Context>, ns: &str, pod_name: &str, container: &str, query: Option<&str>) -> Response<Body> {
    let opts = match Options::parse(&super::query_pairs(query), jiff::Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let api: kube::Api<Pod> = kube::Api::namespaced(ctx.client.clone(), ns);
    let pod = match api.get_opt(pod_name).await {
        Ok(Some(p)) => p,
        Ok(None) => return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} does not exist\n")),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading pod {ns}/{pod_name} from the API server: {e}")),
    };
    let in_spec = pod.spec.as_ref().is_some_and(|s| {
        s.containers.iter().any(|c| c.name == container)
            || s.init_containers.iter().flatten().any(|c| c.name == container)
            || s.ephemeral_containers.iter().flatten().any(|c| c.name == container)
    });
    if !in_spec {
        return text(StatusCode::NOT_FOUND, format!("container {container:?} not found in pod {pod_name:?}\n"));
    }
    let (id, restarts) = match pick_container(&pod, container, opts.previous) {
        Ok(x) => x,
        Err(e) => return text(e.code, e.message),
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let fallback = ctx.cfg.logs_dir().join(format!("{ns}_{pod_name}_{uid}")).join(container).join(format!("{restarts}.log"));
    let path = match ctx.cri.container_status(api::ContainerStatusRequest { container_id: id.clone(), verbose: false }).await {
        Ok(r) => r.status.map(|s| s.log_path).filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or(fallback),
        Err(_) => fallback,
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to open log file {:?} of container {container:?} in pod {pod_name:?}: {e}", path.display()),
            )
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let cri = ctx.cri.clone();
    tokio::spawn(async move {
        if let Err(e) = stream(file, opts, tx, cri, id).await {
            tracing::debug!(path = %path.display(), error = %e, "log stream ended");
        }
    });
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(hyper::body::Frame::data(b)), rx))
    }));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp
}

/// Copy the file through the formatter into `tx`, following if asked.
async fn stream(
    mut file: tokio::fs::File,
    opts: Options,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    cri: crate::cri::Cri,
    id: String,
) -> std::io::Result<()> {
    let size = file.metadata().await?.len();
    let start = match opts.tail_lines {
        None => 0,
        Some(n) => {
            let from = size.saturating_sub(TAIL_WINDOW);
            file.seek(std::io::SeekFrom::Start(from)).await?;
            let mut window = Vec::new();
            (&mut file).take(size - from).read_to_end(&mut window).await?;
            from + tail_start(&window, n) as u64
        }
    };
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let follow = opts.follow;
    let mut fmt = Formatter::new(opts);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_check = tokio::time::Instant::now();
    let mut exited = false;
    loop {
        let n = file.read(&mut buf).await?;
        if n > 0 {
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            let mut consumed = 0;
            while let Some(i) = pending[consumed..].iter().position(|b| *b == b'\n') {
                fmt.feed(&pending[consumed..consumed + i], &mut out);
                consumed += i + 1;
                if fmt.done() {
                    break;
                }
            }
            pending.drain(..consumed);
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return Ok(());
            }
            if fmt.done() {
                return Ok(());
            }
            continue;
        }
        // At the end of what is written so far.
        if !follow || exited || tx.is_closed() {
            return Ok(());
        }
        if last_check.elapsed() >= STATE_CHECK {
            last_check = tokio::time::Instant::now();
            let state = cri.container_status(api::ContainerStatusRequest { container_id: id.clone(), verbose: false }).await;
            exited = match state {
                Ok(r) => r.status.is_none_or(|s| s.state == api::ContainerState::ContainerExited as i32),
                Err(e) => e.is_not_found(),
            };
            // One more read drains what the container wrote before exiting.
            if exited {
                continue;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "status": {"containerStatuses": statuses}})).unwrap()
    }

    #[test]
    fn running_container_and_previous() {
        let p = pod(json!([{
            "name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 2,
            "containerID": "containerd://abc",
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}}
        }]));
        assert_eq!(pick_container(&p, "c", false).unwrap(), ("abc".into(), 2));
        assert_eq!(pick_container(&p, "c", true).unwrap(), ("old".into(), 1));
    }

    #[test]
    fn waiting_containers_explain_themselves() {
        let p = pod(json!([{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}
        }]));
        let e = pick_container(&p, "c", false).unwrap_err();
        assert_eq!(e.code, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "container \"c\" in pod \"web\" is waiting to start: ContainerCreating");
        assert_eq!(pick_container(&p, "c", true).unwrap_err().message, "previous terminated container \"c\" in pod \"web\" not found");
        assert_eq!(pick_container(&p, "x", false).unwrap_err().message, "container \"x\" in pod \"web\" is not available");
    }

    #[test]
    fn terminated_without_id_falls_back_to_last_state() {
        let p = pod(json!([{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"terminated": {"exitCode": 0}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://prev"}}
        }]));
        assert_eq!(pick_container(&p, "c", false).unwrap(), ("prev".into(), 2));
    }
}
