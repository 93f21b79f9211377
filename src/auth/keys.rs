//! An issuer's public keys: static PEM files, or a key set found by OIDC discovery (or at a
//! configured JWKS URL) and kept fresh.
//!
//! Each key verifies exactly one algorithm, taken from the key (its JWK `alg`, its curve, or
//! for an RSA key without `alg` the algorithms the discovery document advertises, RS256 if
//! none): a token's header can only pick among them, never make an RSA key check an HMAC.
//! HMAC (`oct`) keys and encryption keys are never loaded.
//!
//! A fetched set is refreshed every [`REFRESH_EVERY`] and when a token names a key it does not
//! hold, at most once per [`MIN_REFETCH`]: a flood of made-up `kid`s costs the provider one
//! request per interval. When the provider cannot be reached, the last keys keep working.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::fetch::Fetcher;
use crate::config::KeyConfig;

/// How often a fetched key set is fetched again while it works.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10 * 60);
/// The least time between two fetches a token's unknown `kid` may cause.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// The most keys read from one set.
const MAX_KEYS: usize = 64;

/// One public key and the one algorithm it verifies.
pub struct Key {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// What a key set holds now.
struct Snapshot {
    keys: Vec<Arc<Key>>,
    /// Changes only when the keys do: tokens verified under another generation are checked again.
    generation: u64,
    /// The fingerprint of the fetched JWKS, to tell a changed set from the same one fetched again.
    fingerprint: String,
    loaded: bool,
    /// Why the last fetch failed, if it did.
    error: Option<String>,
}

enum Source {
    Static,
    Remote {
        fetcher: Box<Fetcher>,
        issuer: String,
        discovery: String,
        jwks: Option<String>,
    },
}

/// The keys of one issuer.
pub struct KeySet {
    source: Source,
    state: RwLock<Arc<Snapshot>>,
    /// When a fetch was last tried (held while one is in flight, so there is only ever one).
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

/// Why no key verifies a token.
#[derive(Debug, PartialEq, Eq)]
pub enum Missing {
    /// The set was read and holds no key for the token's algorithm and `kid`.
    NoSuchKey,
    /// The set could not be read yet (the provider is down or misconfigured).
    NotLoaded(String),
}

impl KeySet {
    /// Keys read from PEM files, fixed for kubegate's lifetime.
    pub fn from_files(keys: &[KeyConfig]) -> Result<KeySet, String> {
        let keys = keys
            .iter()
            .map(|k| load_pem(k).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeySet {
            source: Source::Static,
            state: RwLock::new(Arc::new(Snapshot {
                keys,
                generation: 0,
                fingerprint: String::new(),
                loaded: true,
                error: None,
            })),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// Keys fetched from the issuer: from `jwks` if given, else from the discovery document's
    /// `jwks_uri`. Nothing is fetched until [`KeySet::refresh`] or a token asks.
    pub fn remote(
        fetcher: Fetcher,
        issuer: &str,
        discovery: Option<&str>,
        jwks: Option<&str>,
    ) -> KeySet {
        let discovery = discovery.map_or_else(
            || {
                format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                )
            },
            str::to_owned,
        );
        KeySet {
            source: Source::Remote {
                fetcher: Box::new(fetcher),
                issuer: issuer.to_owned(),
                discovery,
                jwks: jwks.map(str::to_owned),
            },
            state: RwLock::new(Arc::new(Snapshot {
                keys: Vec::new(),
                generation: 0,
                fingerprint: String::new(),
                loaded: false,
                error: Some("not fetched yet".into()),
            })),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The generation of the keys held now.
    pub fn generation(&self) -> u64 {
        self.snapshot().generation
    }

    /// Whether the keys were read; if not, why.
    pub fn unready(&self) -> Option<String> {
        let snapshot = self.snapshot();
        (!snapshot.loaded).then(|| snapshot.error.clone().unwrap_or_default())
    }

    /// The keys that could have signed a token with this header, with their generation; an
    /// unknown `kid` first refreshes a fetched set (at most once per [`MIN_REFETCH`]).
    pub async fn find(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<(Vec<Arc<Key>>, u64), Missing> {
        let found = matching(&self.snapshot(), algorithm, kid);
        if !found.0.is_empty() {
            return Ok(found);
        }
        if matches!(self.source, Source::Remote { .. }) {
            self.refresh(MIN_REFETCH).await;
        }
        let snapshot = self.snapshot();
        let found = matching(&snapshot, algorithm, kid);
        if !found.0.is_empty() {
            Ok(found)
        } else if snapshot.loaded {
            Err(Missing::NoSuchKey)
        } else {
            Err(Missing::NotLoaded(
                snapshot.error.clone().unwrap_or_default(),
            ))
        }
    }

    /// Fetches the set again unless a fetch was tried less than `min_interval` ago; returns
    /// whether this call fetched. On failure the keys held are kept.
    pub async fn refresh(&self, min_interval: Duration) -> bool {
        let Source::Remote {
            fetcher,
            issuer,
            discovery,
            jwks,
        } = &self.source
        else {
            return false;
        };
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|at| at.elapsed() < min_interval) {
            return false;
        }
        let fetched = fetch(fetcher, issuer, discovery, jwks.as_deref()).await;
        // Stamped when the fetch ends: callers that waited for it find it fresh, not due again.
        *last = Some(Instant::now());
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let current = Arc::clone(&state);
        *state = Arc::new(match fetched {
            Ok((keys, fingerprint)) => {
                let changed = fingerprint != current.fingerprint;
                if changed {
                    tracing::info!(issuer, keys = keys.len(), "issuer keys loaded");
                }
                Snapshot {
                    generation: current.generation + u64::from(changed),
                    keys: keys.into_iter().map(Arc::new).collect(),
                    fingerprint,
                    loaded: true,
                    error: None,
                }
            }
            Err(error) => {
                tracing::warn!(issuer, %error, "cannot fetch the issuer's keys; keeping those held");
                Snapshot {
                    keys: current.keys.clone(),
                    generation: current.generation,
                    fingerprint: current.fingerprint.clone(),
                    loaded: current.loaded,
                    error: Some(error),
                }
            }
        });
        true
    }

    /// Keeps a fetched set fresh for as long as kubegate runs: every [`REFRESH_EVERY`], and
    /// sooner (from 1 s, doubling to a minute) while fetching fails.
    pub fn keep_fresh(self: &Arc<Self>) {
        if !matches!(self.source, Source::Remote { .. }) {
            return;
        }
        let set = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut retry = Duration::from_secs(1);
            loop {
                let Some(keys) = set.upgrade() else { return };
                keys.refresh(Duration::ZERO).await;
                let failed = keys.snapshot().error.is_some();
                drop(keys);
                let wait = if failed {
                    let wait = retry;
                    retry = (retry * 2).min(Duration::from_secs(60));
                    wait
                } else {
                    retry = Duration::from_secs(1);
                    REFRESH_EVERY
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// The most keys a token without a `kid` is tried against (each try is a signature check).
const MAX_CANDIDATES: usize = 4;

fn matching(snapshot: &Snapshot, algorithm: Algorithm, kid: Option<&str>) -> (Vec<Arc<Key>>, u64) {
    let keys = snapshot
        .keys
        .iter()
        .filter(|k| k.algorithm == algorithm)
        .filter(|k| match (k.kid.as_deref(), kid) {
            // A key without an id may have signed any token; a token without one, any key.
            (None, _) | (_, None) => true,
            (Some(have), Some(want)) => have == want,
        })
        .take(MAX_CANDIDATES)
        .cloned()
        .collect();
    (keys, snapshot.generation)
}

/// Discovery (unless the JWKS URL is configured), then the key set.
async fn fetch(
    fetcher: &Fetcher,
    issuer: &str,
    discovery: &str,
    jwks: Option<&str>,
) -> Result<(Vec<Key>, String), String> {
    let (jwks_uri, rsa_algorithms) = match jwks {
        Some(url) => (url.to_owned(), Vec::new()),
        None => {
            let document = fetcher.get_json(discovery).await?;
            read_discovery(&document, issuer)?
        }
    };
    let set = fetcher.get_json(&jwks_uri).await?;
    let keys = read_jwks(&set, &rsa_algorithms)?;
    // The same keys served in another order are the same set.
    let mut entries: Vec<String> = set["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Value::to_string)
        .collect();
    entries.sort();
    Ok((keys, entries.join("\n")))
}

/// The `jwks_uri` of a discovery document that is the issuer's own, and the RSA algorithms it
/// says its tokens are signed with.
pub fn read_discovery(document: &Value, issuer: &str) -> Result<(String, Vec<Algorithm>), String> {
    // OpenID Connect Discovery §4.3: the document must name exactly the issuer it was asked for.
    if document["issuer"].as_str() != Some(issuer) {
        return Err(format!(
            "the discovery document names the issuer {}, not {issuer}",
            document["issuer"]
        ));
    }
    let jwks_uri = document["jwks_uri"]
        .as_str()
        .ok_or("the discovery document has no jwks_uri")?;
    if !jwks_uri.starts_with("https://") {
        return Err(format!(
            "the discovery document's jwks_uri {jwks_uri} is not https://"
        ));
    }
    let advertised = document["id_token_signing_alg_values_supported"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|name| name.parse::<Algorithm>().ok())
        .filter(|a| is_rsa(*a))
        .collect();
    Ok((jwks_uri.to_owned(), advertised))
}

/// The usable signing keys of a JWKS. Keys kubegate cannot or must not use (HMAC, encryption,
/// unknown types or curves) are skipped; a set with none left is an error.
pub fn read_jwks(set: &Value, rsa_algorithms: &[Algorithm]) -> Result<Vec<Key>, String> {
    let entries = set["keys"]
        .as_array()
        .ok_or("the key set has no `keys` list")?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries.iter().take(MAX_KEYS) {
        match key_from_jwk(entry, rsa_algorithms) {
            Ok(mut found) => keys.append(&mut found),
            Err(why) => skipped.push(why),
        }
    }
    if !skipped.is_empty() {
        tracing::debug!(?skipped, "JWKS entries not used");
    }
    if keys.is_empty() {
        return Err(format!(
            "the key set holds no usable signing key ({})",
            if skipped.is_empty() {
                "it is empty".to_owned()
            } else {
                skipped.join("; ")
            }
        ));
    }
    Ok(keys)
}

fn key_from_jwk(entry: &Value, rsa_algorithms: &[Algorithm]) -> Result<Vec<Key>, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone())
        .map_err(|_| format!("a key of type {} kubegate does not read", entry["kty"]))?;
    let kid = jwk.common.key_id.clone();
    let name = kid.as_deref().unwrap_or("(no kid)").to_owned();
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err(format!("{name}: not a signing key"));
    }
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(signing_algorithm(alg).ok_or_else(|| {
            format!("{name}: algorithm {alg:?} is not for signatures kubegate checks")
        })?),
    };
    let algorithms: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            Some(a) if is_rsa(a) => vec![a],
            Some(a) => return Err(format!("{name}: an RSA key declared for {a:?}")),
            None if rsa_algorithms.is_empty() => vec![Algorithm::RS256],
            None => rsa_algorithms.to_vec(),
        },
        AlgorithmParameters::EllipticCurve(ec) => {
            let natural = match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(format!("{name}: curve {:?} is not supported", ec.curve)),
            };
            if declared.is_some_and(|a| a != natural) {
                return Err(format!("{name}: its alg does not match its curve"));
            }
            vec![natural]
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err(format!(
                    "{name}: only Ed25519 octet key pairs are supported"
                ));
            }
            if declared.is_some_and(|a| a != Algorithm::EdDSA) {
                return Err(format!(
                    "{name}: an Ed25519 key declared for another algorithm"
                ));
            }
            vec![Algorithm::EdDSA]
        }
        // A shared secret would let whoever holds it mint tokens: never a verification key here.
        AlgorithmParameters::OctetKey(_) => return Err(format!("{name}: an HMAC secret")),
        _ => return Err(format!("{name}: an unknown key type")),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{name}: {e}"))?;
    Ok(algorithms
        .into_iter()
        .map(|algorithm| Key {
            kid: kid.clone(),
            algorithm,
            key: key.clone(),
        })
        .collect())
}

fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn is_rsa(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    )
}

/// The algorithm a configured key verifies (HMAC and `none` are refused on purpose).
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match name.parse::<Algorithm>() {
        Ok(a)
            if is_rsa(a) || matches!(a, Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA) =>
        {
            Ok(a)
        }
        _ => Err(format!(
            "unsupported JWT algorithm {name:?}: use RS256, RS384, RS512, PS256, PS384, PS512, \
             ES256, ES384 or EdDSA"
        )),
    }
}

fn load_pem(config: &KeyConfig) -> Result<Key, String> {
    let algorithm = parse_algorithm(&config.algorithm)?;
    let path = config.file.display();
    let pem = std::fs::read(&config.file)
        .map_err(|e| format!("cannot read the verification key {path}: {e}"))?;
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
        _ => DecodingKey::from_rsa_pem(&pem),
    }
    .map_err(|e| {
        format!(
            "the verification key {path} is not a PEM public key for {}: {e}",
            config.algorithm
        )
    })?;
    Ok(Key {
        kid: config.kid.clone(),
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests;
