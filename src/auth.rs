//! Authenticates each request by its bearer JWT and turns the verified claims into a [`Caller`].
//!
//! A request without a token, or with one that does not verify against a configured key,
//! issuer and audience, never gets further: the HTTP layer answers it with 401.

mod budget;
mod cache;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::{AuthConfig, KeyConfig};

/// Who is calling, as verified from their token and mapped to Kubernetes names.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// The Kubernetes username kubegate impersonates (the username claim, with any prefix).
    pub username: String,
    /// The Kubernetes groups kubegate impersonates (the groups claim, with any prefix).
    pub groups: Vec<String>,
    /// The tenant the caller belongs to.
    pub tenant: String,
    pub email: Option<String>,
    /// Every other claim, as a string (non-strings JSON-encoded): the Cedar `User`'s tags.
    pub claims: BTreeMap<String, String>,
}

impl fmt::Debug for Caller {
    // The claims can hold personal data; the name, groups and tenant are enough to tell callers apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("username", &self.username)
            .field("groups", &self.groups)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Why a request was not authenticated. Every variant becomes a 401 with this message.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `Authorization: Bearer <JWT>`")]
    MissingToken,
    #[error("the Authorization header is not `Bearer <JWT>`")]
    MalformedHeader,
    #[error("the bearer token is not a well-formed JWT")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("the bearer token is not a well-formed JWT")]
    NotJwt,
    #[error("the bearer token is larger than {} KiB", MAX_TOKEN_BYTES / 1024)]
    TooLarge,
    #[error("no configured key verifies tokens signed with {algorithm:?}{}", kid.as_ref().map(|k| format!(" and kid {k:?}")).unwrap_or_default())]
    UnknownKey {
        algorithm: Algorithm,
        kid: Option<String>,
    },
    #[error("the token was rejected: {}", describe_rejection(.0))]
    Rejected(#[source] jsonwebtoken::errors::Error),
    #[error("the token's `{claim}` claim {problem}")]
    Claim {
        claim: String,
        problem: &'static str,
    },
    #[error(
        "the token maps to `{0}`, a name kubegate never impersonates (Kubernetes reserves \
         `system:` names; the operator's deny-list holds the others)"
    )]
    Reserved(String),
    /// Refused on what the token says of itself, before its signature is checked.
    #[error("the token was rejected: {0}")]
    Unverifiable(&'static str),
    #[error(
        "too many tokens kubegate has not seen before came from this address; wait a moment \
         (a valid token, once verified, is not counted again)"
    )]
    TooManyUnverified,
}

/// Why the authenticator could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot read the verification key {path}")]
    ReadKey {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the verification key {path} is not a PEM public key for {algorithm}")]
    ParseKey {
        path: std::path::PathBuf,
        algorithm: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error(
        "unsupported JWT algorithm {0:?}: use RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384"
    )]
    Algorithm(String),
}

/// One key that may have signed a token, with the validation rules that go with it.
struct VerificationKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// Claims that belong to one token rather than to its caller (checked, then not kept as tags).
const PER_TOKEN_CLAIMS: &[&str] = &["exp", "iat", "nbf", "jti"];

/// The largest bearer token kubegate reads.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies bearer JWTs and maps their claims to a [`Caller`].
pub struct Authenticator {
    keys: Vec<VerificationKey>,
    verified: cache::TokenCache,
    issuer: String,
    audiences: Vec<String>,
    leeway: i64,
    /// Signature checks of unseen tokens, per source address.
    budget: Option<budget::SignatureBudget>,
    username_claim: String,
    groups_claim: String,
    tenant_claim: String,
    username_prefix: String,
    group_prefix: String,
    /// Names never impersonated (besides `system:*`): exact, or prefixes (`kubeadm:*`).
    never: Vec<String>,
}

impl Authenticator {
    /// Loads the configured keys; each key verifies exactly one algorithm.
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator, AuthSetupError> {
        let keys = config
            .keys
            .iter()
            .map(|key| load_key(key, config))
            .collect::<Result<_, _>>()?;
        Ok(Authenticator {
            keys,
            verified: cache::TokenCache::default(),
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            leeway: i64::try_from(config.leeway_seconds).unwrap_or(i64::MAX),
            budget: None,
            username_claim: config.username_claim.clone(),
            groups_claim: config.groups_claim.clone(),
            tenant_claim: config.tenant_claim.clone(),
            username_prefix: config.username_prefix.clone(),
            group_prefix: config.group_prefix.clone(),
            never: config.never_impersonate.clone(),
        })
    }

    /// An authenticator that accepts no token (no keys, no issuer): for a kubegate that serves no
    /// HTTP callers.
    pub fn refusing() -> Authenticator {
        Authenticator {
            keys: Vec::new(),
            verified: cache::TokenCache::default(),
            issuer: String::new(),
            audiences: Vec::new(),
            leeway: 0,
            budget: None,
            username_claim: "sub".to_owned(),
            groups_claim: "groups".to_owned(),
            tenant_claim: "tenant".to_owned(),
            username_prefix: String::new(),
            group_prefix: String::new(),
            never: Vec::new(),
        }
    }

    /// Bounds the signature checks of tokens not seen before to `per_second` per source
    /// address (twice that in a burst).
    pub fn with_signature_budget(mut self, per_second: u32) -> Authenticator {
        self.budget = budget::SignatureBudget::new(per_second);
        self
    }

    /// Verifies the `Authorization` header's bearer token and returns the caller it names.
    /// A token verified before and not yet expired is answered from memory; any other is first
    /// checked for what it says of itself (size, shape, algorithm, key id, issuer, audience,
    /// expiry), then counted against its source address's budget of signature checks, and only
    /// then verified.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        source: std::net::IpAddr,
    ) -> Result<Arc<Caller>, AuthError> {
        let token = bearer_token(authorization)?;
        let now = jiff::Timestamp::now().as_second();
        if let Some(caller) = self.verified.get(token, now) {
            return Ok(caller);
        }
        self.precheck(token, now)?;
        if let Some(budget) = &self.budget
            && !budget.allow(source)
        {
            return Err(AuthError::TooManyUnverified);
        }
        let (caller, expires) = self.verify(token)?;
        let caller = Arc::new(caller);
        self.verified
            .insert(token, Arc::clone(&caller), expires, now);
        Ok(caller)
    }

    /// Refuses, without checking a signature, a token that no configured key could accept:
    /// what it says of itself already fails.
    fn precheck(&self, token: &str, now: i64) -> Result<(), AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let segments: Vec<&str> = token.split('.').collect();
        let base64url = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if segments.len() != 3 || !segments.iter().all(|s| base64url(s)) {
            return Err(AuthError::NotJwt);
        }
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::Malformed)?;
        if !self.keys.iter().any(|k| {
            k.validation.algorithms.contains(&header.alg)
                && (k.kid.is_none() || k.kid == header.kid)
        }) {
            return Err(AuthError::UnknownKey {
                algorithm: header.alg,
                kid: header.kid,
            });
        }
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segments[1])
            .map_err(|_| AuthError::Unverifiable("its claims are not base64url"))?;
        let claims: Unverified = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::Unverifiable("its claims are not a JSON object"))?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(AuthError::Unverifiable(
                "it was issued by an issuer kubegate does not trust",
            ));
        }
        let audiences = match claims.aud {
            Some(Audience::One(aud)) => vec![aud],
            Some(Audience::Many(auds)) => auds,
            None => Vec::new(),
        };
        if !audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(AuthError::Unverifiable(
                "it is not meant for kubegate (aud)",
            ));
        }
        match claims
            .exp
            .and_then(|e| e.as_i64().or(e.as_f64().map(|f| f as i64)))
        {
            None => Err(AuthError::Unverifiable(
                "it lacks one of the claims exp, iss, aud",
            )),
            Some(exp) if exp.saturating_add(self.leeway) < now => {
                Err(AuthError::Unverifiable("it has expired"))
            }
            Some(_) => Ok(()),
        }
    }

    /// Verifies a token's signature and claims; returns the caller and the token's `exp`.
    fn verify(&self, token: &str) -> Result<(Caller, i64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::Malformed)?;
        let candidates = self.keys.iter().filter(|k| {
            k.validation.algorithms.contains(&header.alg)
                && (k.kid.is_none() || k.kid == header.kid)
        });
        // Any candidate key that verifies the token is enough; otherwise report the first failure.
        let mut first_error = None;
        for key in candidates {
            match verify(token, key) {
                Ok(claims) => {
                    // Validation requires `exp`; a token without a numeric one is never cached.
                    let expires = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
                    return Ok((self.caller_from_claims(claims)?, expires));
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(match first_error {
            Some(error) => AuthError::Rejected(error),
            None => AuthError::UnknownKey {
                algorithm: header.alg,
                kid: header.kid,
            },
        })
    }

    fn caller_from_claims(&self, mut claims: Map<String, Value>) -> Result<Caller, AuthError> {
        let username = take_string(&mut claims, &self.username_claim)?
            .ok_or_else(|| missing(&self.username_claim))?;
        let username =
            self.kubernetes_name(&self.username_prefix, &username, &self.username_claim)?;
        let groups = take_groups(&mut claims, &self.groups_claim)?
            .iter()
            .map(|g| self.kubernetes_name(&self.group_prefix, g, &self.groups_claim))
            .collect::<Result<Vec<_>, _>>()?;
        let tenant = take_string(&mut claims, &self.tenant_claim)?
            .ok_or_else(|| missing(&self.tenant_claim))?;
        check_printable(&tenant, &self.tenant_claim)?;
        let email = take_string(&mut claims, "email")?;
        // The token's own bookkeeping differs from one token of a caller to the next and says
        // nothing of who they are: it is not one of their tags.
        for per_token in PER_TOKEN_CLAIMS {
            claims.remove(*per_token);
        }
        let claims = claims
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        Ok(Caller {
            username,
            groups,
            tenant,
            email,
            claims,
        })
    }
}

/// The claims a precheck reads, unverified.
#[derive(serde::Deserialize)]
struct Unverified {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<serde_json::Number>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

fn load_key(key: &KeyConfig, config: &AuthConfig) -> Result<VerificationKey, AuthSetupError> {
    let algorithm = parse_algorithm(&key.algorithm)?;
    let pem = std::fs::read(&key.file).map_err(|source| AuthSetupError::ReadKey {
        path: key.file.clone(),
        source,
    })?;
    let decoding = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_rsa_pem(&pem),
    }
    .map_err(|source| AuthSetupError::ParseKey {
        path: key.file.clone(),
        algorithm: key.algorithm.clone(),
        source,
    })?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&config.audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = config.leeway_seconds;
    Ok(VerificationKey {
        kid: key.kid.clone(),
        key: decoding,
        validation,
    })
}

fn parse_algorithm(name: &str) -> Result<Algorithm, AuthSetupError> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        // HMAC is refused on purpose: a shared secret would let kubegate mint tokens too.
        other => Err(AuthSetupError::Algorithm(other.to_owned())),
    }
}

fn verify(
    token: &str,
    key: &VerificationKey,
) -> Result<Map<String, Value>, jsonwebtoken::errors::Error> {
    jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation).map(|d| d.claims)
}

fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingToken)?;
    let value = std::str::from_utf8(value).map_err(|_| AuthError::MalformedHeader)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedHeader)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token.trim())
}

fn describe_rejection(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "it has expired",
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)",
        ErrorKind::InvalidSignature => "its signature does not verify",
        ErrorKind::InvalidIssuer => "it was issued by an issuer kubegate does not trust",
        ErrorKind::InvalidAudience => "it is not meant for kubegate (aud)",
        ErrorKind::MissingRequiredClaim(_) => "it lacks one of the claims exp, iss, aud",
        ErrorKind::InvalidAlgorithm => "it is signed with an algorithm its key does not allow",
        _ => "it is not a valid token",
    }
}

fn missing(claim: &str) -> AuthError {
    AuthError::Claim {
        claim: claim.to_owned(),
        problem: "is missing",
    }
}

fn take_string(claims: &mut Map<String, Value>, claim: &str) -> Result<Option<String>, AuthError> {
    match claims.remove(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(AuthError::Claim {
            claim: claim.to_owned(),
            problem: "is empty",
        }),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AuthError::Claim {
            claim: claim.to_owned(),
            problem: "is not a string",
        }),
    }
}

fn take_groups(claims: &mut Map<String, Value>, claim: &str) -> Result<Vec<String>, AuthError> {
    let not_strings = || AuthError::Claim {
        claim: claim.to_owned(),
        problem: "is not a list of strings",
    };
    match claims.remove(claim) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s),
                _ => Err(not_strings()),
            })
            .collect(),
        Some(_) => Err(not_strings()),
    }
}

impl Authenticator {
    /// Prefixes a claim into a Kubernetes user or group name, refusing empty names, names
    /// Kubernetes reserves and names on the deny-list.
    fn kubernetes_name(&self, prefix: &str, value: &str, claim: &str) -> Result<String, AuthError> {
        check_printable(value, claim)?;
        if value.is_empty() {
            return Err(AuthError::Claim {
                claim: claim.to_owned(),
                problem: "is empty",
            });
        }
        let name = format!("{prefix}{value}");
        if never_impersonated(&name, &self.never) {
            return Err(AuthError::Reserved(name));
        }
        Ok(name)
    }
}

/// Whether `name` is `system:…` or matches the deny-list (exact names, or `prefix*`).
pub fn never_impersonated(name: &str, never: &[String]) -> bool {
    name.starts_with("system:")
        || never.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        })
}

/// Names travel in HTTP headers (`Impersonate-User`): visible ASCII and inner spaces only. Edge
/// spaces are refused because the API server trims header values: Cedar would judge `"alice "`
/// while Kubernetes saw `alice`.
fn check_printable(value: &str, claim: &str) -> Result<(), AuthError> {
    if value.len() > 253
        || value.trim() != value
        || !value.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(AuthError::Claim {
            claim: claim.to_owned(),
            problem: "holds characters or a length kubegate cannot pass to Kubernetes",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
