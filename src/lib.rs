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
//!    dispatches the method; for `tools/call` it parses the arguments into a [`tool::ToolCall`].
//! 5. [`policy`] decides the call with Cedar and returns a [`policy::Permit`] (or a
//!    [`policy::Denied`] carrying the deciding policies and their reasons).
//! 6. [`tool`] runs the call; only a `Permit` lets it reach Kubernetes.
//! 7. [`kube`] sends the request through one shared connection pool, impersonating the caller,
//!    and notes each request's API server `Audit-Id`.
//! 8. [`audit`] writes one JSON line per MCP request, shaped after `audit.k8s.io/v1` `Event`.
//!
//! [`gateway`] holds the running parts together and builds them from [`config`]; [`dev`] makes
//! the local CA, certificates and dev tokens that the demo and the tests use.

pub mod audit;
pub mod auth;
pub mod config;
pub mod dev;
pub mod gateway;
pub mod http;
pub mod kube;
pub mod mcp;
pub mod policy;
pub mod tls;
pub mod tool;

/// Installs ring as the process's rustls crypto provider; harmless if one is installed already.
pub fn install_crypto_provider() {
    // An Err only says that a provider was installed before, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
