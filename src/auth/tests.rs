use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use std::sync::Arc;

use super::*;

/// The source address of the tests' requests.
const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
use crate::config::{AuthConfig, KeyConfig};
use crate::dev::{self, IssuerKey, TokenRequest};

struct Fixture {
    _dir: tempfile::TempDir,
    key: IssuerKey,
    auth: Authenticator,
}

fn config(key_file: PathBuf, prefix: &str) -> AuthConfig {
    AuthConfig {
        issuer: dev::DEV_ISSUER.to_owned(),
        audiences: vec![dev::DEV_AUDIENCE.to_owned()],
        keys: vec![KeyConfig {
            file: key_file,
            algorithm: "ES256".to_owned(),
            kid: None,
        }],
        username_claim: "sub".to_owned(),
        groups_claim: "groups".to_owned(),
        tenant_claim: "tenant".to_owned(),
        username_prefix: prefix.to_owned(),
        group_prefix: prefix.to_owned(),
        leeway_seconds: 5,
        resource: None,
        authorization_servers: Vec::new(),
        scopes_supported: Vec::new(),
        never_impersonate: vec!["kubeadm:*".to_owned(), "breakglass-admins".to_owned()],
    }
}

fn fixture(prefix: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = IssuerKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("issuer.pub.pem");
    std::fs::write(&file, &key.public_pem).unwrap_or_else(|e| panic!("{e}"));
    let auth = Authenticator::from_config(&config(file, prefix)).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        _dir: dir,
        key,
        auth,
    }
}

fn request(user: &str, groups: &[&str], tenant: Option<&str>) -> TokenRequest {
    TokenRequest {
        issuer: dev::DEV_ISSUER.to_owned(),
        audience: dev::DEV_AUDIENCE.to_owned(),
        subject: user.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        tenant: tenant.map(str::to_owned),
        email: Some(format!("{user}@example.com")),
        lifetime: Duration::from_secs(600),
    }
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fn sign(key: &IssuerKey, claims: serde_json::Value) -> String {
    let key =
        EncodingKey::from_ec_pem(key.private_pem.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_dev_token_becomes_a_caller() {
    let f = fixture("");
    let token = dev::mint_token(
        f.key.private_pem.as_bytes(),
        &request("alice", &["team-a-devs"], Some("team-a")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let caller = f.auth.authenticate(Some(&bearer(&token)), LOCAL);
    let caller = caller.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(caller.username, "alice");
    assert_eq!(caller.groups, ["team-a-devs"]);
    assert_eq!(caller.tenant, "team-a");
    assert_eq!(caller.email.as_deref(), Some("alice@example.com"));
    assert_eq!(
        caller.claims.get("iss").map(String::as_str),
        Some(dev::DEV_ISSUER)
    );
    for per_token in ["jti", "exp", "iat"] {
        assert!(
            !caller.claims.contains_key(per_token),
            "{per_token} belongs to the token, not the caller"
        );
    }
    assert!(
        !caller.claims.contains_key("sub"),
        "mapped claims are not repeated as tags"
    );
    let lower = format!("bearer {token}").into_bytes();
    assert!(
        f.auth.authenticate(Some(&lower), LOCAL).is_ok(),
        "the scheme is case-insensitive"
    );
}

#[test]
fn prefixes_map_claims_to_kubernetes_names() {
    let f = fixture("oidc:");
    let token = dev::mint_token(
        f.key.private_pem.as_bytes(),
        &request("alice", &["devs"], Some("team-a")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let caller = f
        .auth
        .authenticate(Some(&bearer(&token)), LOCAL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(caller.username, "oidc:alice");
    assert_eq!(caller.groups, ["oidc:devs"]);
}

#[test]
fn missing_and_malformed_credentials_are_refused() {
    let f = fixture("");
    assert!(matches!(
        f.auth.authenticate(None, LOCAL),
        Err(AuthError::MissingToken)
    ));
    assert!(matches!(
        f.auth.authenticate(Some(b"Basic YWxpY2U6cHc="), LOCAL),
        Err(AuthError::MalformedHeader)
    ));
    assert!(matches!(
        f.auth.authenticate(Some(b"Bearer "), LOCAL),
        Err(AuthError::MalformedHeader)
    ));
    assert!(matches!(
        f.auth.authenticate(Some(b"Bearer not.a.jwt"), LOCAL),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        f.auth.authenticate(Some(&[b'B', 0xff, 0xfe]), LOCAL),
        Err(AuthError::MalformedHeader)
    ));
}

#[test]
fn tokens_kubegate_should_not_trust_are_rejected_with_the_reason() {
    let f = fixture("");
    let now = jiff::Timestamp::now().as_second();
    let base = json!({"iss": dev::DEV_ISSUER, "aud": dev::DEV_AUDIENCE, "sub": "alice",
                      "tenant": "team-a", "exp": now + 600});
    let with = |field: &str, value: serde_json::Value| {
        let mut claims = base.clone();
        claims[field] = value;
        sign(&f.key, claims)
    };
    let message = |token: String| {
        f.auth
            .authenticate(Some(&bearer(&token)), LOCAL)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        message(with("exp", json!(now - 60))),
        "the token was rejected: it has expired"
    );
    assert_eq!(
        message(with("aud", json!("someone-else"))),
        "the token was rejected: it is not meant for kubegate (aud)"
    );
    assert_eq!(
        message(with("iss", json!("https://evil.example"))),
        "the token was rejected: it was issued by an issuer kubegate does not trust"
    );
    assert_eq!(
        message(with("nbf", json!(now + 3600))),
        "the token was rejected: it is not valid yet (nbf)"
    );
    let other_key = IssuerKey::generate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        message(sign(&other_key, base.clone())),
        "the token was rejected: its signature does not verify"
    );
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &base,
        &EncodingKey::from_secret(f.key.public_pem.as_bytes()),
    )
    .unwrap_or_default();
    assert_eq!(
        message(hs256),
        "no configured key verifies tokens signed with HS256"
    );
}

#[test]
fn claims_must_name_a_usable_identity() {
    let f = fixture("");
    let now = jiff::Timestamp::now().as_second();
    let token = |extra: serde_json::Value| {
        let mut claims =
            json!({"iss": dev::DEV_ISSUER, "aud": dev::DEV_AUDIENCE, "exp": now + 600});
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        sign(&f.key, claims)
    };
    let message = |extra| {
        f.auth
            .authenticate(Some(&bearer(&token(extra))), LOCAL)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        message(json!({"tenant": "t"})),
        "the token's `sub` claim is missing"
    );
    assert_eq!(
        message(json!({"sub": "alice"})),
        "the token's `tenant` claim is missing"
    );
    assert_eq!(
        message(json!({"sub": "alice", "tenant": "t", "groups": [1]})),
        "the token's `groups` claim is not a list of strings"
    );
    assert!(message(json!({"sub": "system:admin", "tenant": "t"})).contains("reserves"));
    assert!(
        message(json!({"sub": "alice", "tenant": "t", "groups": ["system:masters"]}))
            .contains("`system:masters`")
    );
    assert!(
        message(json!({"sub": "alice\r\nImpersonate-Group: system:masters", "tenant": "t"}))
            .contains("cannot pass to Kubernetes")
    );
    assert!(
        message(json!({"sub": "alice ", "tenant": "t"})).contains("cannot pass to Kubernetes"),
        "the API server would trim it to another name"
    );
    // A leading space must not smuggle a reserved name past the `system:` check: the API
    // server trims it and would impersonate system:masters.
    assert!(
        message(json!({"sub": "alice", "tenant": "t", "groups": [" system:masters"]}))
            .contains("cannot pass to Kubernetes")
    );
    assert!(
        message(json!({"sub": " system:admin", "tenant": "t"}))
            .contains("cannot pass to Kubernetes")
    );
    // The deny-list: kubeadm's admin group (by prefix) and a name the operator listed; an
    // empty name is no name.
    assert!(
        message(json!({"sub": "alice", "tenant": "t", "groups": ["kubeadm:cluster-admins"]}))
            .contains("`kubeadm:cluster-admins`, a name kubegate never impersonates")
    );
    assert!(
        message(json!({"sub": "alice", "tenant": "t", "groups": ["breakglass-admins"]}))
            .contains("never impersonates")
    );
    assert!(
        !message(json!({"sub": "alice", "tenant": "t", "groups": ["breakglass-admins-2"]}))
            .contains("never impersonates"),
        "an exact name is not a prefix"
    );
    assert_eq!(
        message(json!({"sub": "", "tenant": "t"})),
        "the token's `sub` claim is empty"
    );
    let single_group = f.auth.authenticate(
        Some(&bearer(&token(
            json!({"sub": "a", "tenant": "t", "groups": "g"}),
        ))),
        LOCAL,
    );
    assert_eq!(
        single_group.ok().map(|c| c.groups.clone()),
        Some(vec!["g".to_owned()])
    );
}

#[test]
fn setup_refuses_shared_secrets_and_unreadable_keys() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut hmac = config(dir.path().join("k.pem"), "");
    hmac.keys[0].algorithm = "HS256".to_owned();
    assert!(matches!(
        Authenticator::from_config(&hmac),
        Err(AuthSetupError::Algorithm(_))
    ));
    let missing = config(dir.path().join("absent.pem"), "");
    assert!(matches!(
        Authenticator::from_config(&missing),
        Err(AuthSetupError::ReadKey { .. })
    ));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        Authenticator::from_config(&config(garbage, "")),
        Err(AuthSetupError::ParseKey { .. })
    ));
}

#[test]
fn a_verified_token_is_remembered_until_it_expires_and_only_then() {
    let f = fixture("");
    let token = dev::mint_token(
        f.key.private_pem.as_bytes(),
        &request("alice", &["devs"], Some("team-a")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let first = f
        .auth
        .authenticate(Some(&bearer(&token)), LOCAL)
        .unwrap_or_else(|e| panic!("{e}"));
    let second = f
        .auth
        .authenticate(Some(&bearer(&token)), LOCAL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second call is answered from the cache"
    );
    // A tampered copy of a cached token is not the cached token (one signature character changed;
    // not the last, whose low bits are padding).
    let mut tampered: Vec<char> = token.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert!(
        f.auth
            .authenticate(Some(&bearer(&tampered)), LOCAL)
            .is_err()
    );
    assert_eq!(f.auth.verified.len(), 1, "failures are not cached");
}

mod hostile {
    //! Whatever a caller sends as a token (junk, forged headers and claims, claims of any
    //! shape signed with the right key), authentication answers with an error or a caller,
    //! never a panic; and nothing unsigned by the key is ever accepted.

    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[ -~]{0,16}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn segment(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn junk_is_refused_without_panic(junk in "(?s).{0,300}") {
            let f = fixture("");
            let header = format!("Bearer {junk}").into_bytes();
            prop_assert!(f.auth.authenticate(Some(&header), LOCAL).is_err());
            prop_assert!(f.auth.authenticate(Some(junk.as_bytes()), LOCAL).is_err());
        }

        #[test]
        fn forged_headers_and_claims_are_refused(
            header in json_value(2),
            claims in json_value(2),
            signature in "[A-Za-z0-9_-]{0,90}",
        ) {
            let f = fixture("");
            let token = format!("{}.{}.{signature}", segment(&header), segment(&claims));
            prop_assert!(f.auth.authenticate(Some(&bearer(&token)), LOCAL).is_err());
        }

        #[test]
        fn claims_of_any_shape_signed_by_the_key_never_panic(
            extra in prop::collection::btree_map("[a-z]{1,8}", json_value(2), 0..6),
            sub in json_value(1),
            groups in json_value(1),
            tenant in json_value(1),
        ) {
            let f = fixture("");
            let now = jiff::Timestamp::now().as_second();
            let mut claims = json!({
                "iss": dev::DEV_ISSUER, "aud": dev::DEV_AUDIENCE, "exp": now + 600,
                "sub": sub, "groups": groups, "tenant": tenant,
            });
            for (k, v) in extra {
                claims[k] = v;
            }
            let token = sign(&f.key, claims);
            match f.auth.authenticate(Some(&bearer(&token)), LOCAL) {
                Ok(caller) => {
                    prop_assert!(!caller.username.is_empty());
                    prop_assert!(!caller.username.starts_with("system:"));
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}
