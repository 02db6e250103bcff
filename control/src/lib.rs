//! Coracle's control plane: the Kubernetes API server and what sits behind it.
//!
//! Owns: the HTTPS API (request path: TLS → authentication → authorization →
//! decode → admission → store → watch fan-out), the datastore behind the
//! [`store::Store`] trait, the served resource registry and OpenAPI, and the
//! cluster PKI. Must not: talk to containerd or touch the node (that is
//! `coracle-agent`), nor be reached by the kubelet other than over HTTPS.

pub mod admission;
pub mod api;
pub mod apply;
pub mod auth;
pub mod config;
pub mod controllers;
pub mod openapi;
pub mod table;
pub mod field_error;
pub mod goquote;
pub mod json_eq;
pub mod names;
pub mod patch;
pub mod selector;
pub mod server;
pub mod pki;
pub mod proto;
pub mod registry;
pub mod store;
pub mod schema;
pub mod scheduler;

// Lets modules name this crate as other crates do (`coracle_control::...`),
// so a module can be built and tested on its own while it is written.
extern crate self as coracle_control;
