//! kubegate: a policy-gated, multi-tenant MCP gateway for Kubernetes.
//!
//! # The way a `tools/call` travels through the crate
//!
//! ```text
//! client ──TLS──▶ http ──▶ auth ──▶ mcp ──▶ policy ──▶ tool ──▶ kube (as caller) ──▶ kube-apiserver
//!                  └─────────┴────────┴────────┴──────────┴──────────┴──▶ audit
//! ```
//!
//! 1. [`tls`] terminates TLS with rustls (HTTP/2 or HTTP/1.1 by ALPN).
//! 2. [`http`] routes `/mcp`, `/healthz` and `/readyz`, limits body sizes, and is the one place
//!    where errors become HTTP statuses.
//! 3. [`auth`] verifies the bearer JWT and turns it into a [`auth::Caller`], or a 401.
//! 4. [`mcp`] parses the JSON-RPC message, negotiates the protocol version, keeps sessions and
//!    dispatches the method; for `tools/call` it parses the arguments into a [`tool::ToolCall`]
//!    (each tool's typed argument struct, checked against what the API server serves).
//! 5. [`policy`] decides the call with Cedar on every resource of its scope and returns the call
//!    bound to its [`policy::Permit`] as a [`policy::Permitted`] (or a [`policy::Denied`]
//!    carrying the deciding policies and their reasons).
//! 6. For a call that changes the cluster, [`audit`] writes its `RequestReceived` record to disk
//!    first and hands back the [`audit::WriteAhead`] proof a change needs.
//! 7. [`tool`] runs the permitted call, passing every object it returns through one filter
//!    (Secret values masked unless `reveal-secrets` is granted).
//! 8. [`kube`] sends each request through one shared connection pool, impersonating the caller,
//!    and notes each request's API server `Audit-Id`.
//! 9. [`audit`] writes the `ResponseComplete` record, shaped after `audit.k8s.io/v1` `Event`,
//!    before the answer leaves.
//!
//! [`stdio`] is the other transport: a local client's messages, one per line, as the caller
//! the configuration names.
//!
//! [`gateway`] holds the running parts together and builds them from [`config`]; [`clusters`]
//! holds the clusters kubegate fronts (a `tools/call` names one with `context`, or goes to the
//! default one); [`dev`] makes the local CA, certificates and dev tokens that the demo and the
//! tests use.

pub mod analyze;
pub mod audit;
pub mod auth;
pub mod clusters;
pub mod config;
#[cfg(any(test, feature = "dev"))]
pub mod dev;
pub mod gateway;
pub mod http;
pub mod kube;
pub mod mcp;
pub mod metrics;
pub mod policy;
pub mod stdio;
pub mod telemetry;
pub mod tls;
pub mod tool;

/// Installs ring as the process's rustls crypto provider; harmless if one is installed already.
pub fn install_crypto_provider() {
    // An Err only says that a provider was installed before, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
