//! A `kube::Client` that calls the in-process [`ApiServer`] directly: the
//! controllers speak the Kubernetes API exactly as a remote client would,
//! without TLS or a socket in between.

use crate::api::{request::Query, ApiServer, Call, User};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The identity the in-process controllers act as.
pub fn controller_user() -> User {
    User {
        name: "system:kube-controller-manager".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        uid: None,
    }
}

#[derive(Clone)]
pub struct InProcess {
    api: Arc<ApiServer>,
    user: User,
}

impl InProcess {
    pub fn new(api: Arc<ApiServer>, user: User) -> Self {
        Self { api, user }
    }
}

impl tower::Service<Request<kube::client::Body>> for InProcess {
    type Response = Response<crate::api::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let api = self.api.clone();
        let user = self.user.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body: Bytes = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return Ok(crate::api::error_response(&crate::api::status::ApiError::bad_request(format!(
                        "reading request body: {e}"
                    ))))
                }
            };
            let header = |name: http::header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let call = Call {
                method: parts.method.clone(),
                query: Query::parse(parts.uri.query()),
                accept: header(http::header::ACCEPT),
                content_type: header(http::header::CONTENT_TYPE),
                user,
                user_agent: Some("coracle-controller-manager".into()),
                body,
            };
            Ok(api.handle(parts.uri.path(), call).await)
        })
    }
}

/// A client for the controllers of this process.
pub fn in_process(api: Arc<ApiServer>) -> kube::Client {
    kube::Client::new(InProcess::new(api, controller_user()), "default")
}
