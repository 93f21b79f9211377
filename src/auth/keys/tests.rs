//! Key sets as providers publish them: each real key verifies exactly the algorithm it is for,
//! and what must never verify a token (HMAC secrets, encryption keys, mismatched curves) is
//! never loaded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, Validation};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use super::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key pair, its JWK and its signing key.
struct Pair {
    jwk: Value,
    signing: EncodingKey,
}

fn ec(alg: &'static rcgen::SignatureAlgorithm, crv: &str, kid: &str) -> Pair {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap_or_else(|e| panic!("{e}"));
    let point = pair.public_key_raw();
    let half = (point.len() - 1) / 2;
    Pair {
        jwk: json!({"kty": "EC", "crv": crv, "kid": kid, "use": "sig",
                    "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])}),
        signing: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

fn ed25519(kid: &str) -> Pair {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap_or_else(|e| panic!("{e}"));
    Pair {
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key_raw())}),
        signing: EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes())
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

fn rsa_pair(kid: &str, alg: Option<&str>) -> Pair {
    let key =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap_or_else(|e| panic!("{e}"));
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut jwk = json!({"kty": "RSA", "kid": kid, "n": b64(&key.n().to_bytes_be()),
                         "e": b64(&key.e().to_bytes_be())});
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    Pair {
        jwk,
        signing: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn sign(pair: &Pair, algorithm: Algorithm) -> String {
    let mut header = Header::new(algorithm);
    header.kid = pair.jwk["kid"].as_str().map(str::to_owned);
    let claims = json!({"sub": "alice", "exp": jiff::Timestamp::now().as_second() + 600});
    jsonwebtoken::encode(&header, &claims, &pair.signing).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether a token verifies with the key the set holds for its header.
fn verifies(keys: &[Key], token: &str) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return false;
    };
    keys.iter()
        .filter(|k| k.algorithm == header.alg && k.kid == header.kid)
        .any(|k| {
            let mut validation = Validation::new(k.algorithm);
            validation.required_spec_claims.clear();
            validation.validate_aud = false;
            jsonwebtoken::decode::<Value>(token, &k.key, &validation).is_ok()
        })
}

#[test]
fn each_real_key_verifies_its_own_algorithm_and_no_other() {
    let p256 = ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", "ec256");
    let p384 = ec(&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", "ec384");
    let ed = ed25519("ed");
    let rsa = rsa_pair("rsa", Some("PS384"));
    let set = json!({"keys": [p256.jwk, p384.jwk, ed.jwk, rsa.jwk]});
    let keys = read_jwks(&set, &[]).unwrap_or_else(|e| panic!("{e}"));
    let algorithms: Vec<(Option<&str>, Algorithm)> = keys
        .iter()
        .map(|k| (k.kid.as_deref(), k.algorithm))
        .collect();
    assert_eq!(
        algorithms,
        [
            (Some("ec256"), Algorithm::ES256),
            (Some("ec384"), Algorithm::ES384),
            (Some("ed"), Algorithm::EdDSA),
            (Some("rsa"), Algorithm::PS384),
        ]
    );
    assert!(verifies(&keys, &sign(&p256, Algorithm::ES256)));
    assert!(verifies(&keys, &sign(&p384, Algorithm::ES384)));
    assert!(verifies(&keys, &sign(&ed, Algorithm::EdDSA)));
    assert!(verifies(&keys, &sign(&rsa, Algorithm::PS384)));
    // The key decides the algorithm: the same RSA key under RS256 is not a key kubegate holds.
    assert!(!verifies(&keys, &sign(&rsa, Algorithm::RS256)));
    // Another key with the same kid does not verify.
    let impostor = ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", "ec256");
    assert!(!verifies(&keys, &sign(&impostor, Algorithm::ES256)));
}

#[test]
fn an_rsa_key_without_alg_verifies_what_discovery_advertises_else_rs256() {
    let rsa = rsa_pair("r", None);
    let set = json!({"keys": [rsa.jwk]});
    let plain = read_jwks(&set, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plain.iter().map(|k| k.algorithm).collect::<Vec<_>>(),
        [Algorithm::RS256]
    );
    assert!(verifies(&plain, &sign(&rsa, Algorithm::RS256)));
    assert!(!verifies(&plain, &sign(&rsa, Algorithm::PS256)));
    let advertised =
        read_jwks(&set, &[Algorithm::RS256, Algorithm::PS512]).unwrap_or_else(|e| panic!("{e}"));
    assert!(verifies(&advertised, &sign(&rsa, Algorithm::PS512)));
}

#[test]
fn secrets_encryption_keys_and_mismatches_are_never_loaded() {
    let good = ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", "good");
    let mut wrong_alg = ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", "wrong-alg").jwk;
    wrong_alg["alg"] = json!("ES384");
    let mut encryption = ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", "enc").jwk;
    encryption["use"] = json!("enc");
    let secret = json!({"kty": "oct", "kid": "hmac", "k": b64(b"a shared secret")});
    let mut hmac_rsa = rsa_pair("hs", None).jwk;
    hmac_rsa["alg"] = json!("HS256");
    let unknown = json!({"kty": "XYZ", "kid": "odd"});
    let set = json!({"keys": [secret, encryption, wrong_alg, hmac_rsa, unknown, good.jwk]});
    let keys = read_jwks(&set, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keys.iter().map(|k| k.kid.as_deref()).collect::<Vec<_>>(),
        [Some("good")],
        "only the signing key whose alg matches its curve"
    );
    let none_left = read_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), &[]);
    assert!(none_left.is_err_and(|e| e.contains("no usable signing key") && e.contains("HMAC")));
    assert!(read_jwks(&json!({"nokeys": []}), &[]).is_err());
}

#[test]
fn discovery_must_name_the_issuer_and_an_https_key_set() {
    let issuer = "https://login.example/realms/a";
    let document = json!({"issuer": issuer, "jwks_uri": "https://login.example/certs",
                          "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "none", "HS256"]});
    let (jwks, rsa) = read_discovery(&document, issuer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jwks, "https://login.example/certs");
    assert_eq!(
        rsa,
        [Algorithm::RS256, Algorithm::PS256],
        "only RSA algorithms, never none or HMAC"
    );
    let other = json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/k"});
    assert!(read_discovery(&other, issuer).is_err_and(|e| e.contains("names the issuer")));
    let plain = json!({"issuer": issuer, "jwks_uri": "http://login.example/certs"});
    assert!(read_discovery(&plain, issuer).is_err_and(|e| e.contains("not https")));
}

#[test]
fn configured_algorithms_exclude_hmac_and_none() {
    for ok in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ] {
        assert!(parse_algorithm(ok).is_ok(), "{ok}");
    }
    for refused in ["HS256", "HS512", "none", "rs256", ""] {
        assert!(parse_algorithm(refused).is_err(), "{refused}");
    }
}

mod hostile {
    //! Whatever a provider (or whoever answers in its place) serves as discovery or key set,
    //! kubegate reads it without panicking and never loads a key for HMAC or `none`.

    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("RSA".to_owned()),
                Just("EC".to_owned()),
                Just("OKP".to_owned()),
                Just("oct".to_owned()),
                Just("P-256".to_owned()),
                Just("Ed25519".to_owned()),
                Just("HS256".to_owned()),
                Just("none".to_owned()),
                "[A-Za-z0-9_-]{0,12}",
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("kty".to_owned()),
                        Just("alg".to_owned()),
                        Just("crv".to_owned()),
                        Just("use".to_owned()),
                        Just("kid".to_owned()),
                        Just("x".to_owned()),
                        Just("y".to_owned()),
                        Just("n".to_owned()),
                        Just("e".to_owned()),
                        Just("k".to_owned()),
                        Just("keys".to_owned()),
                        Just("issuer".to_owned()),
                        Just("jwks_uri".to_owned()),
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_key_set_or_discovery_document_is_read_safely(set in json_value(), doc in json_value()) {
            if let Ok(keys) = read_jwks(&set, &[Algorithm::RS256]) {
                for key in keys {
                    prop_assert!(!matches!(key.algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512));
                }
            }
            if let Ok((jwks, _)) = read_discovery(&doc, "https://issuer.example") {
                prop_assert!(jwks.starts_with("https://"));
            }
        }
    }
}
