//! Service account tokens: signing, verifying, and what uses them.
//!
//! Owns: the token issuer (ES256 key kept in `DATA_DIR/tls`, see
//! [`keys`]), the JWT format ([`jwt`]) and claims ([`claims`]),
//! TokenRequest ([`token_request`]), bearer token authentication
//! ([`authenticate`]), the OIDC discovery documents ([`discovery`]) and the
//! ServiceAccount admission plugin's lookup ([`pod_admission`]). Must not:
//! write objects (the controllers in `controllers::serviceaccount` do), or
//! decide what an authenticated user may do (authorization).

pub mod authenticate;
pub mod claims;
pub mod discovery;
pub mod jwt;
pub mod keys;
pub mod pod_admission;
pub mod token_request;

pub use keys::{issuer_for, register, TokenIssuer};

/// Standard base64 (what Secret data holds), or None.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}
