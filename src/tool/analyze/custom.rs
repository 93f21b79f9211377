//! Asks a tenant's custom analyzers (HTTP endpoints set with `config`) what they find, and keeps
//! only what concerns the namespaces the call covers. Its client also reaches the configured
//! explanation model (`super::explain`).
//!
//! A custom analyzer is reached only at a URL that starts with one of the operator's allowed
//! prefixes (`[analysis] custom_analyzer_allowlist`, checked again at every call, so removing a
//! prefix stops its analyzers at once); redirects are not followed, answers are bounded in size
//! and time, and nothing of the caller's identity or token is sent: only which namespaces to look
//! at. The analyzer answers in k8sgpt's JSON shape:
//!
//! ```json
//! POST <url>   {"cluster": "prod", "namespaces": ["team-a"], "clusterWide": false}
//! 200          {"results": [{"kind": "Disk", "name": "team-a/db-0",
//!                            "error": [{"Text": "...", "KubernetesDoc": "..."}],
//!                            "parentObject": "StatefulSet/db"}]}
//! ```
//!
//! A result about a namespace the call does not cover (or about a cluster-scoped object, on a
//! call for one namespace) is dropped: a custom analyzer cannot widen what a caller sees.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::filters::allowed;
use crate::kube::CustomAnalyzer;

/// How long one custom analyzer may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from one.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The most results kept from one.
const MAX_RESULTS: usize = 500;

/// A result a custom analyzer reported, in k8sgpt's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFinding {
    pub kind: String,
    pub name: String,
    #[serde(rename = "error", default)]
    pub failures: Vec<CustomFailure>,
    #[serde(default)]
    pub parent_object: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFailure {
    #[serde(rename = "Text")]
    pub text: String,
    #[serde(rename = "KubernetesDoc", default)]
    pub doc: String,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<CustomFinding>,
}

/// The HTTP(S) client custom analyzers are asked with (the system's trusted roots).
pub struct CustomClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl CustomClient {
    pub fn new() -> CustomClient {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map(|b| b.https_or_http().enable_http1().build())
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "no system roots: custom analyzers over HTTPS will fail");
                let config = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_or_http()
                    .enable_http1()
                    .build()
            });
        CustomClient {
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }

    /// Asks each of `analyzers` whose URL is still allowed; returns what they found within
    /// `namespaces`, and a note for each that failed or was skipped.
    pub async fn ask(
        &self,
        analyzers: &[CustomAnalyzer],
        allowlist: &[String],
        cluster: &str,
        namespaces: &[String],
        cluster_wide: bool,
    ) -> (Vec<CustomFinding>, Vec<String>) {
        let mut found = Vec::new();
        let mut notes = Vec::new();
        let covered: HashSet<&str> = namespaces.iter().map(String::as_str).collect();
        for analyzer in analyzers {
            if !allowed(&analyzer.url, allowlist) {
                notes.push(format!(
                    "custom analyzer {:?} was skipped: its URL is no longer allowed here",
                    analyzer.name
                ));
                continue;
            }
            let body =
                json!({"cluster": cluster, "namespaces": namespaces, "clusterWide": cluster_wide});
            match self.post(&analyzer.url, body.to_string()).await {
                Ok(results) => {
                    let total = results.len();
                    let kept: Vec<CustomFinding> = results
                        .into_iter()
                        .filter(|r| within(&r.name, &covered, cluster_wide))
                        .filter(|r| !r.failures.is_empty())
                        .take(MAX_RESULTS)
                        .collect();
                    if kept.len() < total {
                        tracing::debug!(
                            analyzer = %analyzer.name,
                            dropped = total - kept.len(),
                            "custom analyzer results outside the call's namespaces dropped"
                        );
                    }
                    found.extend(kept);
                }
                Err(why) => {
                    notes.push(format!("custom analyzer {:?} failed: {why}", analyzer.name))
                }
            }
        }
        (found, notes)
    }

    async fn post(&self, url: &str, body: String) -> Result<Vec<CustomFinding>, String> {
        let bytes = self.post_json(url, body, None, TIMEOUT).await?;
        serde_json::from_slice::<Answer>(&bytes)
            .map(|a| a.results)
            .map_err(|e| format!("its answer is not k8sgpt's result JSON: {e}"))
    }

    /// POSTs a JSON body (with a bearer token, if given) and returns the successful answer's
    /// bytes, bounded in size and time. Redirects are not followed.
    pub async fn post_json(
        &self,
        url: &str,
        body: String,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        let mut request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad URL: {e}"))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("unreachable: {e}"))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("it answered {status}"));
            }
            Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|body| body.to_bytes())
                .map_err(|_| {
                    format!("its answer is larger than {MAX_ANSWER_BYTES} bytes or broke off")
                })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
    }
}

impl Default for CustomClient {
    fn default() -> CustomClient {
        CustomClient::new()
    }
}

/// Whether a result's `namespace/name` (or cluster-scoped `name`) is one the call covers.
fn within(name: &str, covered: &HashSet<&str>, cluster_wide: bool) -> bool {
    match name.split_once('/') {
        Some((namespace, object)) => covered.contains(namespace) && !object.is_empty(),
        None => cluster_wide && !name.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_outside_the_covered_namespaces_are_dropped() {
        let covered: HashSet<&str> = ["team-a"].into_iter().collect();
        assert!(within("team-a/db-0", &covered, false));
        assert!(!within("team-b/db-0", &covered, false));
        assert!(!within("team-a/", &covered, false));
        assert!(
            !within("node-1", &covered, false),
            "cluster-scoped, on a namespace call"
        );
        assert!(within("node-1", &covered, true));
        assert!(!within("", &covered, true));
    }
}
