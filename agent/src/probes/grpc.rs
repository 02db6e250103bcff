//! grpc probes: `grpc.health.v1.Health/Check` over plaintext HTTP/2 on the
//! pod's IP and port, with the optional service name. SERVING succeeds;
//! everything else fails with upstream's message. The two messages of the
//! health protocol are hand-written prost structs.

use super::tcp;
use super::worker::Outcome;
use std::time::Duration;
use tokio::time::Instant;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// UNKNOWN = 0, SERVING = 1, NOT_SERVING = 2, SERVICE_UNKNOWN = 3.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
pub const SERVING: i32 = 1;

/// The name of a serving status, as Go's generated code prints it.
pub fn status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// Go's `time.Duration` printing for whole seconds ("1s", "1m30s").
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) if d.subsec_millis() > 0 && sec == 0 => format!("{}ms", d.subsec_millis()),
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

/// One grpc probe. Connecting and the call each get `timeout`, as upstream.
pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = tcp::host_port(host, port);
    let within = go_duration(timeout);
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout),
        Err(e) => return Outcome::Error(format!("invalid address {addr:?}: {e}")),
    };
    let endpoint = match endpoint.user_agent(super::http::PROBE_USER_AGENT) {
        Ok(e) => e,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    // Upstream dials in blocking mode: it retries until the deadline.
    let deadline = Instant::now() + timeout;
    let channel = loop {
        match tokio::time::timeout_at(deadline, endpoint.connect()).await {
            Ok(Ok(c)) => break c,
            Ok(Err(_)) if Instant::now() + Duration::from_millis(100) < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => {
                return Outcome::Failure(format!("timeout: failed to connect service {addr:?} within {within}: context deadline exceeded"))
            }
        }
    };
    let mut client = tonic::client::Grpc::new(channel);
    let call = async {
        client.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static(CHECK_PATH);
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        client.unary(tonic::Request::new(HealthCheckRequest { service: service.to_string() }), path, codec).await
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Outcome::Failure(format!("timeout: health rpc did not complete within {within}")),
        Ok(Err(status)) => match status.code() {
            tonic::Code::Unimplemented => Outcome::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            )),
            tonic::Code::DeadlineExceeded => Outcome::Failure(format!("timeout: health rpc did not complete within {within}")),
            code => Outcome::Failure(format!("error: health rpc probe failed: rpc error: code = {code:?} desc = {}", status.message())),
        },
        Ok(Ok(resp)) => match resp.into_inner().status {
            SERVING => Outcome::Success,
            other => Outcome::Failure(format!("service unhealthy (responded with {:?})", status_name(other))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

    /// A health server: statuses per service name; `implemented: false`
    /// answers like a server without the health service.
    #[derive(Clone)]
    struct Health {
        statuses: Arc<HashMap<String, i32>>,
        implemented: bool,
    }

    impl tower::Service<http::Request<tonic::body::Body>> for Health {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let me = self.clone();
            Box::pin(async move {
                if !me.implemented || req.uri().path() != CHECK_PATH {
                    return Ok(tonic::Status::unimplemented("unknown service grpc.health.v1.Health").into_http());
                }
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default());
                Ok(grpc.unary(Check(me.statuses.clone()), req).await)
            })
        }
    }

    struct Check(Arc<HashMap<String, i32>>);

    impl tonic::server::UnaryService<HealthCheckRequest> for Check {
        type Response = HealthCheckResponse;
        type Future = BoxFuture<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;

        fn call(&mut self, req: tonic::Request<HealthCheckRequest>) -> Self::Future {
            let status = self.0.get(&req.get_ref().service).copied();
            Box::pin(async move {
                match status {
                    Some(-1) => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(tonic::Response::new(HealthCheckResponse { status: SERVING }))
                    }
                    Some(s) => Ok(tonic::Response::new(HealthCheckResponse { status: s })),
                    None => Err(tonic::Status::not_found("unknown service")),
                }
            })
        }
    }

    async fn serve(h: Health) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test");
        let port = listener.local_addr().expect("test").port();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(h, incoming));
        port
    }

    #[tokio::test]
    async fn health_statuses_map_like_upstream() {
        let statuses = [("".to_string(), 1), ("db".to_string(), 2), ("slow".to_string(), -1)];
        let port = serve(Health { statuses: Arc::new(statuses.into_iter().collect()), implemented: true }).await;
        let t = Duration::from_secs(1);
        assert_eq!(probe("127.0.0.1", port, "", t).await, Outcome::Success);
        assert_eq!(probe("127.0.0.1", port, "db", t).await, Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into()));
        assert_eq!(
            probe("127.0.0.1", port, "nope", t).await,
            Outcome::Failure("error: health rpc probe failed: rpc error: code = NotFound desc = unknown service".into())
        );
        assert_eq!(probe("127.0.0.1", port, "slow", t).await, Outcome::Failure("timeout: health rpc did not complete within 1s".into()));
    }

    #[tokio::test]
    async fn servers_without_health_and_closed_ports_fail() {
        let port = serve(Health { statuses: Arc::default(), implemented: false }).await;
        let t = Duration::from_secs(1);
        assert_eq!(
            probe("127.0.0.1", port, "", t).await,
            Outcome::Failure(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
                    .into()
            )
        );
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test").local_addr().expect("test").port();
        assert_eq!(
            probe("127.0.0.1", closed, "", t).await,
            Outcome::Failure(format!("timeout: failed to connect service \"127.0.0.1:{closed}\" within 1s: context deadline exceeded"))
        );
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
