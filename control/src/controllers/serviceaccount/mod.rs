//! The ServiceAccount controllers of kube-controller-manager:
//! [`default_account`] (a `default` ServiceAccount in every namespace),
//! [`root_ca`] (the `kube-root-ca.crt` ConfigMap in every namespace) and
//! [`tokens`] (filling legacy `kubernetes.io/service-account-token`
//! Secrets, deleting those whose ServiceAccount is gone).
//!
//! They read the cluster CA and the token signing key from the server's
//! token issuer (`crate::auth::issuer_for(&ctx.config)`); without one (no
//! `coracle server` around them) the CA publisher and the tokens
//! controller do nothing. Must not: sign bound tokens or admit pods (that
//! is the API server's, `crate::auth`).

pub mod default_account;
pub mod root_ca;
pub mod tokens;

use super::Context;
use k8s_openapi::api::core::v1::Namespace;

pub fn start(ctx: &Context) {
    default_account::start(ctx);
    root_ca::start(ctx);
    tokens::start(ctx);
}

/// A namespace that is gone or being deleted gets no new content.
pub(crate) fn namespace_active(ns: Option<&Namespace>) -> bool {
    let Some(ns) = ns else { return false };
    let terminating = ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    ns.metadata.deletion_timestamp.is_none() && !terminating
}

/// A write that lost to the namespace going away (or a create to the
/// object already being there) is not a failure; an update conflict is
/// (the key is retried on the fresh state).
pub(crate) fn benign(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s)
        if (s.code == 409 && s.reason == "AlreadyExists") || s.code == 404 || (s.code == 403 && s.message.contains("being terminated")))
}

