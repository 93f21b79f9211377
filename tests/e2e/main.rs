//! End-to-end tests: kubegate served over real TLS, called with real signed JWTs, deciding with
//! Cedar, and calling a real kube-apiserver (with etcd, RBAC and audit logging) as the caller.
//! One control plane serves the whole run (see `support::cluster`); the tests of several
//! clusters start a second one of their own.

#[path = "../support/mod.rs"]
mod support;

mod analyze;
mod analyze_custom;
mod audit_durable;
mod audit_review;
mod auth;
mod cedar_cli;
mod cli;
mod clusters;
mod deploy;
mod explain;
mod holddown;
mod kubelet;
mod list_resources;
mod mcp;
mod oidc;
mod oidc_provider;
mod policy_gate;
mod protocol;
mod sdk;
mod secrets;
mod seeds;
mod sessions;
mod sse;
mod stateless;
mod stdio;
mod telemetry;
mod tls_identity;
mod tools_destructive;
mod tools_read;
mod tools_write;
mod transport;
