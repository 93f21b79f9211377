use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use std::sync::Arc;

use super::*;

/// The source address of the tests' requests.
const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
use crate::config::AuthConfig;
use crate::dev::{self, IssuerKey, TokenRequest};

struct Fixture {
    _dir: tempfile::TempDir,
    key: IssuerKey,
    auth: Authenticator,
}

impl Fixture {
    /// Authenticates as the HTTP layer does (static keys: nothing is awaited for long).
    fn check(&self, authorization: Option<&[u8]>) -> Result<Arc<Caller>, AuthError> {
        futures::executor::block_on(self.auth.authenticate(authorization, LOCAL))
    }
}

/// `[auth]` as an operator writes it: one issuer with a static ES256 key.
fn config(key_file: &std::path::Path, prefix: &str, extra: &str) -> AuthConfig {
    let text = format!(
        r#"
leeway_seconds = 5
never_impersonate = ["kubeadm:*", "breakglass-admins"]

[[jwt]]
issuer.url = "{issuer}"
issuer.audiences = ["{audience}"]
issuer.keys = [{{ file = "{file}", algorithm = "ES256" }}]
claimMappings.username = {{ claim = "sub", prefix = "{prefix}" }}
claimMappings.groups = {{ claim = "groups", prefix = "{prefix}" }}
tenant = {{ claim = "tenant" }}
{extra}
"#,
        issuer = dev::DEV_ISSUER,
        audience = dev::DEV_AUDIENCE,
        file = key_file.display(),
    );
    let config: AuthConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    config.check().unwrap_or_else(|e| panic!("{e}"));
    config
}

fn fixture_with(prefix: &str, extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = IssuerKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("issuer.pub.pem");
    std::fs::write(&file, &key.public_pem).unwrap_or_else(|e| panic!("{e}"));
    let auth =
        Authenticator::from_config(&config(&file, prefix, extra)).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        _dir: dir,
        key,
        auth,
    }
}

fn fixture(prefix: &str) -> Fixture {
    fixture_with(prefix, "")
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
    let caller = f.check(Some(&bearer(&token)));
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
        f.check(Some(&lower)).is_ok(),
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
        .check(Some(&bearer(&token)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(caller.username, "oidc:alice");
    assert_eq!(caller.groups, ["oidc:devs"]);
}

#[test]
fn missing_and_malformed_credentials_are_refused() {
    let f = fixture("");
    assert!(matches!(f.check(None), Err(AuthError::MissingToken)));
    assert!(matches!(
        f.check(Some(b"Basic YWxpY2U6cHc=")),
        Err(AuthError::MalformedHeader)
    ));
    assert!(matches!(
        f.check(Some(b"Bearer ")),
        Err(AuthError::MalformedHeader)
    ));
    assert!(matches!(
        f.check(Some(b"Bearer not.a.jwt")),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        f.check(Some(&[b'B', 0xff, 0xfe])),
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
        f.check(Some(&bearer(&token)))
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
        "the token was rejected: it is not meant for kubegate (aud): it was minted for another resource"
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
        "no key of the token's issuer verifies tokens signed with HS256"
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
        f.check(Some(&bearer(&token(extra))))
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
    let single_group = f.check(Some(&bearer(&token(
        json!({"sub": "a", "tenant": "t", "groups": "g"}),
    ))));
    assert_eq!(
        single_group.ok().map(|c| c.groups.clone()),
        Some(vec!["g".to_owned()])
    );
}

#[test]
fn setup_refuses_shared_secrets_and_unreadable_keys() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let setup = |file: &std::path::Path, algorithm: &str| {
        let mut config = config(file, "", "");
        config.jwt[0].issuer.keys[0].algorithm = algorithm.to_owned();
        Authenticator::from_config(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let key = dir.path().join("k.pem");
    assert!(setup(&key, "HS256").contains("unsupported JWT algorithm \"HS256\""));
    assert!(setup(&key, "none").contains("unsupported JWT algorithm"));
    assert!(
        setup(&dir.path().join("absent.pem"), "ES256").contains("cannot read the verification key")
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap_or_else(|e| panic!("{e}"));
    assert!(setup(&garbage, "ES256").contains("is not a PEM public key for ES256"));
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
        .check(Some(&bearer(&token)))
        .unwrap_or_else(|e| panic!("{e}"));
    let second = f
        .check(Some(&bearer(&token)))
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
    assert!(f.check(Some(&bearer(&tampered))).is_err());
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
            prop_assert!(f.check(Some(&header)).is_err());
            prop_assert!(f.check(Some(junk.as_bytes())).is_err());
        }

        #[test]
        fn forged_headers_and_claims_are_refused(
            header in json_value(2),
            claims in json_value(2),
            signature in "[A-Za-z0-9_-]{0,90}",
        ) {
            let f = fixture("");
            let token = format!("{}.{}.{signature}", segment(&header), segment(&claims));
            prop_assert!(f.check(Some(&bearer(&token))).is_err());
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
            match f.check(Some(&bearer(&token))) {
                Ok(caller) => {
                    prop_assert!(!caller.username.is_empty());
                    prop_assert!(!caller.username.starts_with("system:"));
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}

/// Signs `claims` (over a valid base) with the fixture's key under `header`.
fn signed(f: &Fixture, header: Header, claims: serde_json::Value) -> Vec<u8> {
    let now = jiff::Timestamp::now().as_second();
    let mut all = json!({"iss": dev::DEV_ISSUER, "aud": dev::DEV_AUDIENCE, "sub": "alice",
                         "tenant": "team-a", "exp": now + 600, "iat": now});
    if let (Some(all), Some(claims)) = (all.as_object_mut(), claims.as_object()) {
        all.extend(claims.clone());
    }
    let key =
        EncodingKey::from_ec_pem(f.key.private_pem.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    bearer(&jsonwebtoken::encode(&header, &all, &key).unwrap_or_else(|e| panic!("{e}")))
}

fn refusal(result: Result<Arc<Caller>, AuthError>) -> String {
    result.err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn an_id_token_is_not_taken_for_an_access_token() {
    let f = fixture_with("", "issuer.tokenType = \"at+jwt\"");
    let mut access = Header::new(Algorithm::ES256);
    access.typ = Some("at+jwt".into());
    assert!(
        f.check(Some(&signed(&f, access.clone(), json!({}))))
            .is_ok()
    );
    access.typ = Some("application/AT+JWT".into());
    assert!(
        f.check(Some(&signed(&f, access, json!({})))).is_ok(),
        "the media type's prefix and case do not matter (RFC 7515 4.1.9)"
    );
    let id_token = Header::new(Algorithm::ES256); // typ: JWT
    assert_eq!(
        refusal(f.check(Some(&signed(&f, id_token, json!({}))))),
        "the token's type (typ) is \"JWT\", not \"at+jwt\": send an access token, not an ID token"
    );
}

#[test]
fn claim_rules_and_times_are_checked() {
    let f = fixture_with(
        "",
        "claimValidationRules = [{ claim = \"hd\", requiredValue = \"example.com\" }, \
         { claim = \"email_verified\", requiredValue = \"true\", message = \"the email is not verified\" }]",
    );
    let es = || Header::new(Algorithm::ES256);
    let good = json!({"hd": "example.com", "email_verified": true});
    assert!(f.check(Some(&signed(&f, es(), good))).is_ok());
    assert_eq!(
        refusal(f.check(Some(&signed(
            &f,
            es(),
            json!({"hd": "evil.com", "email_verified": true})
        )))),
        "the token was rejected: its `hd` claim does not have the value kubegate requires"
    );
    assert_eq!(
        refusal(f.check(Some(&signed(
            &f,
            es(),
            json!({"hd": "example.com", "email_verified": false})
        )))),
        "the token was rejected: the email is not verified"
    );
    let later = jiff::Timestamp::now().as_second() + 3600;
    assert_eq!(
        refusal(f.check(Some(&signed(
            &f,
            es(),
            json!({"hd": "example.com", "email_verified": true, "iat": later})
        )))),
        "the token was rejected: it was issued in the future (iat)"
    );
}

#[test]
fn uid_extra_scopes_and_the_issuer_reach_the_caller() {
    let f = fixture_with(
        "sso:",
        "claimMappings.uid = { claim = \"oid\" }\n\
         claimMappings.extra = [{ key = \"example.com/department\", claim = \"dept\" }]",
    );
    let caller = f
        .check(Some(&signed(
            &f,
            Header::new(Algorithm::ES256),
            json!({"oid": "0f1e", "dept": ["payments", "risk"], "scope": "kubegate:read kubegate:write",
                   "scp": ["kubegate:admin"], "groups": ["devs"]}),
        )))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(caller.username, "sso:alice");
    assert_eq!(caller.groups, ["sso:devs"]);
    assert_eq!(caller.uid.as_deref(), Some("0f1e"));
    assert_eq!(
        caller.extra.get("example.com/department"),
        Some(&vec!["payments".to_owned(), "risk".to_owned()])
    );
    assert_eq!(
        caller.scopes,
        ["kubegate:admin", "kubegate:read", "kubegate:write"]
    );
    assert_eq!(caller.issuer.as_deref(), Some(dev::DEV_ISSUER));
}

#[test]
fn a_tenant_comes_from_a_claim_a_group_or_the_issuer_itself() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = IssuerKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("issuer.pub.pem");
    std::fs::write(&file, &key.public_pem).unwrap_or_else(|e| panic!("{e}"));
    let with_tenant = |tenant: &str| {
        let mut config = config(&file, "", "");
        config.jwt[0].tenant = toml::from_str(tenant).unwrap_or_else(|e| panic!("{e}"));
        config.check().unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            _dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            key: IssuerKey {
                private_pem: key.private_pem.clone(),
                public_pem: key.public_pem.clone(),
            },
            auth: Authenticator::from_config(&config).unwrap_or_else(|e| panic!("{e}")),
        }
    };
    let es = || Header::new(Algorithm::ES256);
    let fixed = with_tenant("value = \"team-b\"");
    let caller = fixed.check(Some(&signed(&fixed, es(), json!({"tenant": "team-a"}))));
    assert_eq!(
        caller.map(|c| c.tenant.clone()).ok().as_deref(),
        Some("team-b"),
        "an issuer's fixed tenant wins over what its tokens claim"
    );
    let grouped = with_tenant("groupPrefix = \"tenant:\"");
    let caller = grouped.check(Some(&signed(
        &grouped,
        es(),
        json!({"groups": ["devs", "tenant:team-c"]}),
    )));
    assert_eq!(
        caller.map(|c| c.tenant.clone()).ok().as_deref(),
        Some("team-c")
    );
    assert!(
        refusal(grouped.check(Some(&signed(
            &grouped,
            es(),
            json!({"groups": ["tenant:a", "tenant:b"]})
        ))))
        .contains("more than one tenant group")
    );
    assert!(
        refusal(grouped.check(Some(&signed(&grouped, es(), json!({"groups": ["devs"]})))))
            .contains("names no tenant group")
    );
}

#[test]
fn a_token_for_an_untrusted_issuer_never_reaches_a_key() {
    let f = fixture("");
    let stranger = json!({"iss": "https://stranger.example"});
    assert_eq!(
        refusal(f.check(Some(&signed(&f, Header::new(Algorithm::ES256), stranger)))),
        "the token was rejected: it was issued by an issuer kubegate does not trust"
    );
    let mut unknown_kid = Header::new(Algorithm::ES384);
    unknown_kid.kid = Some("k-404".into());
    let key =
        EncodingKey::from_ec_pem(f.key.private_pem.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": dev::DEV_ISSUER, "aud": dev::DEV_AUDIENCE, "sub": "a", "tenant": "t", "exp": now + 60});
    // ES384 cannot be signed with a P-256 key: hand-make the header to name a key kubegate lacks.
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap_or_default();
    let (_, rest) = token.split_once('.').unwrap_or_default();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&unknown_kid).unwrap_or_default());
    assert_eq!(
        refusal(f.check(Some(&bearer(&format!("{header}.{rest}"))))),
        "no key of the token's issuer verifies tokens signed with ES384 and kid \"k-404\""
    );
}

#[test]
fn unready_only_when_no_issuer_can_verify_yet() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("k.pem");
    let key = IssuerKey::generate().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, &key.public_pem).unwrap_or_else(|e| panic!("{e}"));
    let remote = r#"
[[jwt]]
issuer.url = "https://idp.invalid"
issuer.audiences = ["kubegate"]
claimMappings.username = { claim = "sub", prefix = "idp:" }
tenant = { value = "t" }
"#;
    let only_remote: AuthConfig = toml::from_str(remote).unwrap_or_else(|e| panic!("{e}"));
    let auth = Authenticator::from_config(&only_remote).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        auth.waiting(),
        (vec!["https://idp.invalid"], true),
        "nothing fetched yet"
    );
    let mut both = config(&file, "dev:", "");
    both.jwt.extend(only_remote.jwt);
    both.check().unwrap_or_else(|e| panic!("{e}"));
    let auth = Authenticator::from_config(&both).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        auth.waiting(),
        (vec!["https://idp.invalid"], false),
        "the static issuer verifies: ready, naming the one it waits for"
    );
}
