//! Issuers found by OIDC discovery over HTTPS: real RSA, EC and Ed25519 keys, keys rotated while
//! kubegate runs, a flood of made-up key ids, a provider that goes down (or is down at start),
//! two issuers at once, and every kind of bad token refused with its status and challenge,
//! before policy and Kubernetes.

use std::time::{Duration, Instant};

use anyhow::Result;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::idp::{Idp, SigningKey};
use crate::support::{GatewayOptions, TestGateway, eventually};

const AUDIENCE: &str = "https://kubegate.e2e/mcp";

/// `[auth]` trusting `idp` (prefix `idp:`, access tokens only) and the dev issuer (prefix `dev:`).
fn auth_for(idp: &Idp, ca_file: &std::path::Path) -> String {
    format!(
        r#"
[auth]
never_impersonate = ["kubeadm:*", "idp:admins"]

[[auth.jwt]]
issuer.url = "{issuer}"
issuer.audiences = ["{AUDIENCE}"]
issuer.certificateAuthority = "{ca}"
issuer.tokenType = "at+jwt"
claimMappings.username = {{ claim = "sub", prefix = "idp:" }}
claimMappings.groups = {{ claim = "groups", prefix = "idp:" }}
tenant = {{ claim = "tenant" }}

[[auth.jwt]]
issuer.url = "{dev}"
issuer.audiences = ["{dev_audience}"]
issuer.keys = [{{ file = "certs/dev-issuer.pub.pem", algorithm = "ES256" }}]
claimMappings.username = {{ claim = "sub", prefix = "dev:" }}
claimMappings.groups = {{ claim = "groups", prefix = "dev:" }}
tenant = {{ claim = "tenant" }}
"#,
        issuer = idp.issuer,
        ca = ca_file.display(),
        dev = kubegate::dev::DEV_ISSUER,
        dev_audience = kubegate::dev::DEV_AUDIENCE,
    )
}

/// Claims of a good access token for `sub`, overridden by `with`.
fn claims(idp: &Idp, sub: &str, with: Value) -> Value {
    let now = jiff::Timestamp::now().as_second();
    let mut claims = json!({"iss": idp.issuer, "aud": AUDIENCE, "sub": sub, "tenant": "team-a",
                            "groups": ["devs"], "iat": now, "exp": now + 600,
                            "jti": uuid::Uuid::new_v4().to_string()});
    if let (Some(claims), Some(with)) = (claims.as_object_mut(), with.as_object()) {
        claims.extend(with.clone());
    }
    claims
}

async fn start(idp: &Idp) -> Result<(TestGateway, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("idp-ca.pem");
    std::fs::write(&ca, &idp.ca_pem)?;
    let options = GatewayOptions {
        auth: Some(auth_for(idp, &ca)),
        // Every refusal below is recorded, and the floods are not throttled by address.
        http: vec![
            "unauthenticated_records_per_ip_per_second = 1000".into(),
            "unverified_tokens_per_ip_per_second = 1000".into(),
        ],
        ..GatewayOptions::default()
    };
    Ok((TestGateway::start(options).await?, dir))
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

#[tokio::test]
async fn tokens_of_a_discovered_issuer_verify_through_its_key_rotations() -> Result<()> {
    let rs256 = SigningKey::rsa("rs256", Algorithm::RS256)?;
    let ps384 = SigningKey::rsa("ps384", Algorithm::PS384)?;
    let es384 = SigningKey::ec("es384", Algorithm::ES384)?;
    let ed = SigningKey::ed25519("ed")?;
    let idp = Idp::start(&[&rs256, &ps384, &es384, &ed], false).await?;
    let started = Instant::now();
    let (gateway, _dir) = start(&idp).await?;
    let client = gateway.client();
    let ready = gateway.url_of("/readyz");
    eventually("the issuer's keys are fetched", || async {
        client
            .http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await?;
    assert_eq!(idp.jwks_fetches(), 1);

    // Every algorithm, each from its own real key; names carry the issuer's prefix.
    for key in [&rs256, &ps384, &es384, &ed] {
        let token = key.sign("at+jwt", &claims(&idp, "alice", json!({})))?;
        let answer = client.post(Some(&token), &list()).await?;
        assert_eq!(answer.status, 200, "{:?}: {}", key.algorithm, answer.text);
    }
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["user"]["username"], "idp:alice");
    assert_eq!(record["user"]["groups"], json!(["idp:devs"]));
    assert_eq!(record["user"]["issuer"], idp.issuer);
    // The second issuer works beside the first.
    let dev = gateway.token("alice", &["devs"], "team-a");
    assert_eq!(client.post(Some(&dev), &list()).await?.status, 200);
    assert_eq!(
        gateway.audit_records().pop().unwrap_or_default()["user"]["username"],
        "dev:alice"
    );

    // Made-up key ids, right after the fetch: refused, and the provider is not asked again.
    let impostor = SigningKey::ec("made-up", Algorithm::ES384)?;
    for i in 0..30 {
        let forged = SigningKey::ec(&format!("made-up-{i}"), Algorithm::ES384)?;
        let token = forged.sign("at+jwt", &claims(&idp, "mallory", json!({})))?;
        let answer = client.post(Some(&token), &list()).await?;
        assert_eq!(answer.status, 401);
        assert!(
            answer.text.contains("no key of the token's issuer"),
            "{}",
            answer.text
        );
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "a flood of unknown kids does not reach the provider"
    );

    // Rotation: a new key appears and the RS256 one is withdrawn. A token under the new key is
    // accepted once kubegate may fetch again (10 s after its last fetch).
    let rotated = SigningKey::ec("rotated", Algorithm::ES384)?;
    let old_token = rs256.sign("at+jwt", &claims(&idp, "alice", json!({})))?;
    assert_eq!(client.post(Some(&old_token), &list()).await?.status, 200);
    idp.publish(&[&ps384, &es384, &ed, &rotated]);
    tokio::time::sleep(
        Duration::from_secs(10).saturating_sub(started.elapsed()) + Duration::from_millis(500),
    )
    .await;
    let new_token = rotated.sign("at+jwt", &claims(&idp, "alice", json!({})))?;
    let answer = client.post(Some(&new_token), &list()).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(idp.jwks_fetches(), 2, "one fetch for the unknown kid");
    // The withdrawn key's token, though verified and cached before, is verified again.
    let answer = client.post(Some(&old_token), &list()).await?;
    assert_eq!(answer.status, 401, "{}", answer.text);
    for _ in 0..20 {
        let token = impostor.sign("at+jwt", &claims(&idp, "mallory", json!({})))?;
        assert_eq!(client.post(Some(&token), &list()).await?.status, 401);
    }
    assert_eq!(idp.jwks_fetches(), 2, "at most one fetch per 10 s");

    // The provider goes down: the keys kubegate holds keep working for new tokens.
    idp.set_down(true);
    let token = rotated.sign("at+jwt", &claims(&idp, "bob", json!({})))?;
    let answer = client.post(Some(&token), &list()).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    Ok(())
}

#[tokio::test]
async fn kubegate_starts_while_its_provider_is_down_and_is_ready_once_it_is_back() -> Result<()> {
    let key = SigningKey::ed25519("k1")?;
    let idp = Idp::start(&[&key], true).await?;
    let (gateway, _dir) = start(&idp).await?;
    let client = gateway.client();
    // The dev issuer (static keys) works, so kubegate is ready, and says which issuer it waits for.
    let ready = client.http.get(gateway.url_of("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    let why = ready.text().await?;
    assert!(
        why.contains(&format!("the keys of {} are not loaded", idp.issuer)),
        "{why}"
    );
    let token = key.sign("at+jwt", &claims(&idp, "alice", json!({})))?;
    let answer = client.post(Some(&token), &list()).await?;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert!(answer.headers.contains_key("retry-after"));
    assert!(
        answer.text.contains("could not be fetched"),
        "{}",
        answer.text
    );

    idp.set_down(false);
    // kubegate retries after 1, 2, 4 ... s.
    let ready = gateway.url_of("/readyz");
    let mut loaded = false;
    for _ in 0..100 {
        if client.http.get(&ready).send().await?.text().await? == "ok\n" {
            loaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        loaded,
        "the keys are loaded within 10 s of the provider's return"
    );
    assert_eq!(client.post(Some(&token), &list()).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason_before_policy_and_kubernetes() -> Result<()> {
    let key = SigningKey::rsa("rs", Algorithm::RS256)?;
    let idp = Idp::start(&[&key], false).await?;
    let (gateway, _dir) = start(&idp).await?;
    let client = gateway.client();
    let now = jiff::Timestamp::now().as_second();
    let good = key.sign("at+jwt", &claims(&idp, "alice", json!({})))?;
    let segments: Vec<&str> = good.split('.').collect();
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let tampered = format!(
        "{}.{}.{}",
        segments[0],
        b64(&claims(&idp, "admin", json!({}))),
        segments[2]
    );
    let mut hs256_header = jsonwebtoken::Header::new(Algorithm::HS256);
    hs256_header.typ = Some("at+jwt".into());
    hs256_header.kid = Some("rs".into());
    let hs256 = jsonwebtoken::encode(
        &hs256_header,
        &claims(&idp, "alice", json!({})),
        &jsonwebtoken::EncodingKey::from_secret(key.public_pem.as_bytes()),
    )?;
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&claims(&idp, "alice", json!({})))
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            key.sign("at+jwt", &claims(&idp, "alice", json!({"exp": now - 120})))?,
            "it has expired",
        ),
        (
            "not yet valid",
            key.sign("at+jwt", &claims(&idp, "alice", json!({"nbf": now + 3600})))?,
            "it is not valid yet (nbf)",
        ),
        (
            "wrong issuer",
            key.sign(
                "at+jwt",
                &claims(&idp, "alice", json!({"iss": "https://evil.example"})),
            )?,
            "an issuer kubegate does not trust",
        ),
        (
            "minted for another resource",
            key.sign(
                "at+jwt",
                &claims(&idp, "alice", json!({"aud": "https://other.example/mcp"})),
            )?,
            "minted for another resource",
        ),
        (
            "unknown kid",
            SigningKey::rsa("nobody-knows", Algorithm::RS256)?
                .sign("at+jwt", &claims(&idp, "alice", json!({})))?,
            "no key of the token's issuer verifies tokens signed with RS256 and kid \"nobody-knows\"",
        ),
        ("alg none", none, "not a well-formed JWT"),
        (
            "HS256 with the public key as secret",
            hs256,
            "signed with HS256 and kid \"rs\"",
        ),
        (
            "tampered payload",
            tampered,
            "its signature does not verify",
        ),
        (
            "truncated",
            good[..good.len() - 20].to_owned(),
            "it is cut short or corrupted",
        ),
        (
            "an ID token",
            key.sign("JWT", &claims(&idp, "alice", json!({})))?,
            "send an access token, not an ID token",
        ),
        (
            "a name on the deny-list",
            key.sign(
                "at+jwt",
                &claims(&idp, "alice", json!({"groups": ["admins"]})),
            )?,
            "`idp:admins`, a name kubegate never impersonates",
        ),
    ];
    let before = gateway.audit_records().len();
    for (case, token, reason) in &cases {
        let answer = client.post(Some(token), &list()).await?;
        assert_eq!(answer.status, 401, "{case}: {}", answer.text);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{case}: {message}");
        assert!(
            !answer.text.contains(token.as_str()),
            "{case}: the token is never echoed"
        );
        let challenge = answer.headers["www-authenticate"].to_str()?;
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata=\""),
            "{case}: {challenge}"
        );
    }
    // Each refusal was recorded as unauthenticated, with no caller, decision or API request.
    let records = gateway.audit_records();
    let refusals = &records[before..];
    assert_eq!(refusals.len(), cases.len());
    for record in refusals {
        assert_eq!(record["outcome"], "unauthenticated", "{record}");
        assert!(
            record.get("user").is_none() && record.get("decision").is_none(),
            "{record}"
        );
        assert!(
            record["kube"].as_array().is_none_or(Vec::is_empty),
            "{record}"
        );
    }

    // Another scheme than Bearer is no credential at all: a challenge without an error code.
    let basic = client
        .post_raw(
            None,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("authorization", "Basic YWxpY2U6c2VjcmV0"),
            ],
            list().to_string().into_bytes(),
        )
        .await?;
    assert_eq!(basic.status, 401);
    let challenge = basic.headers["www-authenticate"].to_str()?;
    assert!(!challenge.contains("error="), "{challenge}");
    // A key id of any characters still gets a well-formed challenge (ASCII, no quotes).
    let odd = SigningKey::rsa("k\"é\u{7f}", Algorithm::RS256)?
        .sign("at+jwt", &claims(&idp, "alice", json!({})))?;
    let answer = client.post(Some(&odd), &list()).await?;
    assert_eq!(answer.status, 401);
    let challenge = answer.headers["www-authenticate"].to_str()?;
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // The token in the URL: refused as a bad request, whatever else the request says.
    let in_query = client
        .http
        .post(format!("{}?access_token={good}", gateway.url))
        .header("content-type", "application/json")
        .body(list().to_string())
        .send()
        .await?;
    assert_eq!(in_query.status(), 400);
    let challenge = in_query.headers()["www-authenticate"].to_str()?.to_owned();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    assert!(!in_query.text().await?.contains(&good));
    // The same token in the header is fine.
    assert_eq!(client.post(Some(&good), &list()).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn a_configured_key_set_url_is_used_without_discovery() -> Result<()> {
    let key = SigningKey::ec("k", Algorithm::ES256)?;
    let idp = Idp::start(&[&key], false).await?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("idp-ca.pem");
    std::fs::write(&ca, &idp.ca_pem)?;
    // The issuer's own URL serves nothing: only jwksURL can have given kubegate the keys.
    let issuer = "https://issuer.invalid/tenant-b";
    let auth = format!(
        r#"
[[auth.jwt]]
issuer.url = "{issuer}"
issuer.audiences = ["{AUDIENCE}"]
issuer.jwksURL = "{jwks}/jwks"
issuer.certificateAuthority = "{ca}"
claimMappings.username = {{ claim = "sub", prefix = "b:" }}
tenant = {{ value = "team-b" }}
"#,
        jwks = idp.issuer,
        ca = ca.display(),
    );
    let gateway = TestGateway::start(GatewayOptions {
        auth: Some(auth),
        ..GatewayOptions::default()
    })
    .await?;
    let client = gateway.client();
    let mut with = claims(&idp, "bot", json!({"tenant": "team-a"}));
    with["iss"] = json!(issuer);
    let token = key.sign("at+jwt", &with)?;
    let answer = client.post(Some(&token), &list()).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["user"]["username"], "b:bot");
    assert_eq!(
        record["user"]["tenant"], "team-b",
        "the issuer's fixed tenant, not the claim"
    );
    assert_eq!(idp.jwks_fetches(), 1);
    Ok(())
}
