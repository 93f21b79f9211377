//! Authenticates each request by its bearer JWT and turns the verified claims into a [`Caller`].
//!
//! kubegate trusts a list of issuers (`[[auth.jwt]]`), each with its own keys (static, or found
//! by OIDC discovery and kept fresh: [`keys`]) and its own mapping of claims to Kubernetes names
//! ([`issuer`]). A request without a token, or with one that does not verify against its
//! issuer's keys, audience and rules, never gets further: the HTTP layer answers it with 401.

mod budget;
mod cache;
pub mod certificate;
mod fetch;
mod issuer;
pub mod keys;
pub mod scope;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;

use jsonwebtoken::Algorithm;

use crate::config::AuthConfig;
use issuer::Issuer;
use keys::{KeySet, Missing};

/// Who is calling, as verified from their token and mapped to Kubernetes names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The Kubernetes username kubegate impersonates (the username claim, with its prefix).
    pub username: String,
    /// The Kubernetes groups kubegate impersonates (the groups claim, with its prefix).
    pub groups: Vec<String>,
    /// The tenant the caller belongs to.
    pub tenant: String,
    pub email: Option<String>,
    /// Every other claim, as a string (non-strings JSON-encoded): the Cedar `User`'s tags.
    pub claims: BTreeMap<String, String>,
    /// The issuer of the caller's token (none for the stdio caller).
    pub issuer: Option<String>,
    /// The Kubernetes uid (`claimMappings.uid`), if mapped.
    pub uid: Option<String>,
    /// The Kubernetes user's extra values (`claimMappings.extra`).
    pub extra: BTreeMap<String, Vec<String>>,
    /// The token's scopes (`scope` or `scp`).
    pub scopes: Vec<String>,
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

/// Why a request was not authenticated. The HTTP layer answers each with this message: 401 for
/// most, 429 for [`AuthError::TooManyUnverified`], 503 for [`AuthError::KeysUnavailable`], 400
/// for [`AuthError::TokenInQuery`]; a refused client certificate closes its connection.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `Authorization: Bearer <JWT>`")]
    MissingToken,
    #[error("the Authorization header is not `Bearer <JWT>`")]
    MalformedHeader,
    #[error(
        "the token was sent in the URL: send it only in the Authorization header (a URL is \
         logged and cached along the way)"
    )]
    TokenInQuery,
    #[error("the bearer token is not a well-formed JWT")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("the bearer token is not a well-formed JWT")]
    NotJwt,
    #[error("the bearer token is larger than {} KiB", MAX_TOKEN_BYTES / 1024)]
    TooLarge,
    #[error("no key of the token's issuer verifies tokens signed with {algorithm:?}{}", kid.as_ref().map(|k| format!(" and kid {k:?}")).unwrap_or_default())]
    UnknownKey {
        algorithm: Algorithm,
        kid: Option<String>,
    },
    /// The reason (`why`) goes to kubegate's log, not to the unauthenticated client.
    #[error(
        "kubegate cannot verify the token yet: the keys of {issuer} could not be fetched; try \
         again shortly"
    )]
    KeysUnavailable { issuer: String, why: String },
    #[error("the token was rejected: {}", describe_rejection(.0))]
    Rejected(#[source] jsonwebtoken::errors::Error),
    #[error("the client certificate was refused: {0}")]
    Certificate(&'static str),
    #[error("the token's `{claim}` claim {problem}")]
    Claim {
        claim: String,
        problem: &'static str,
    },
    #[error("{}", match message { Some(m) => format!("the token was rejected: {m}"), None => format!("the token was rejected: its `{claim}` claim does not have the value kubegate requires") })]
    Rule {
        claim: String,
        message: Option<String>,
    },
    #[error(
        "the token's type (typ) is {}, not {wanted:?}: {}",
        found.as_ref().map_or("missing".to_owned(), |f| format!("{f:?}")),
        "send an access token, not an ID token"
    )]
    WrongType {
        found: Option<String>,
        wanted: String,
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
#[error("auth.jwt ({issuer}): {problem}")]
pub struct AuthSetupError {
    issuer: String,
    problem: String,
}

/// The largest bearer token kubegate reads.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies bearer JWTs and maps their claims to a [`Caller`].
pub struct Authenticator {
    issuers: Vec<Issuer>,
    verified: cache::TokenCache,
    /// Signature checks of unseen tokens, per source address.
    budget: Option<budget::SignatureBudget>,
    /// Names never impersonated (besides `system:*`): exact, or prefixes (`kubeadm:*`).
    never: Vec<String>,
    /// The scopes each action group's calls need.
    scopes: crate::config::ScopeRules,
}

impl Authenticator {
    /// Builds each issuer: static keys are read now; fetched ones by [`Authenticator::start`].
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator, AuthSetupError> {
        let issuers = config
            .jwt
            .iter()
            .map(|jwt| {
                let setup = |problem: String| AuthSetupError {
                    issuer: jwt.issuer.url.clone(),
                    problem,
                };
                let keys = if jwt.issuer.keys.is_empty() {
                    let fetcher = fetch::Fetcher::new(jwt.issuer.certificate_authority.as_deref())
                        .map_err(setup)?;
                    KeySet::remote(
                        fetcher,
                        &jwt.issuer.url,
                        jwt.issuer.discovery_url.as_deref(),
                        jwt.issuer.jwks_url.as_deref(),
                    )
                } else {
                    KeySet::from_files(&jwt.issuer.keys).map_err(setup)?
                };
                Ok(Issuer::new(
                    jwt,
                    keys,
                    config.leeway_seconds,
                    config.audiences(jwt),
                ))
            })
            .collect::<Result<_, _>>()?;
        Ok(Authenticator {
            issuers,
            verified: cache::TokenCache::default(),
            budget: None,
            never: config.never_impersonate.clone(),
            scopes: config.scopes.clone(),
        })
    }

    /// An authenticator that accepts no token (no issuers): for a kubegate that serves no
    /// HTTP callers.
    pub fn refusing() -> Authenticator {
        Authenticator {
            issuers: Vec::new(),
            verified: cache::TokenCache::default(),
            budget: None,
            never: Vec::new(),
            scopes: Default::default(),
        }
    }

    /// Whether `caller`'s token carries the scopes a request needs. Scopes are the OAuth
    /// tokens' own: callers known otherwise (a client certificate, stdio) need none.
    pub fn check_scopes(
        &self,
        caller: &Caller,
        method: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), scope::Insufficient> {
        let by_token = self
            .issuers
            .iter()
            .any(|i| caller.issuer.as_deref() == Some(i.url.as_str()));
        if !by_token {
            return Ok(());
        }
        scope::check(&self.scopes, caller, method, params)
    }

    /// Bounds the signature checks of tokens not seen before to `per_second` per source
    /// address (twice that in a burst).
    pub fn with_signature_budget(mut self, per_second: u32) -> Authenticator {
        self.budget = budget::SignatureBudget::new(per_second);
        self
    }

    /// Starts fetching (and keeping fresh) the keys of issuers found by discovery. Start-up
    /// does not wait: an issuer that cannot be reached makes kubegate unready, not absent.
    pub fn start(&self) {
        for issuer in &self.issuers {
            issuer.keys.keep_fresh();
        }
    }

    /// The issuers whose keys are not loaded yet, and whether that leaves kubegate unable to
    /// verify any token (one issuer's provider being down, say a tenant's, does not make every
    /// replica unready for everyone; `/readyz` still names it).
    pub fn waiting(&self) -> (Vec<&str>, bool) {
        let waiting: Vec<&str> = self
            .issuers
            .iter()
            .filter(|i| i.keys.unready().is_some())
            .map(|i| i.url.as_str())
            .collect();
        let none_loaded = !self.issuers.is_empty() && waiting.len() == self.issuers.len();
        (waiting, none_loaded)
    }

    /// Verifies the `Authorization` header's bearer token and returns the caller it names.
    /// A token verified before, not yet expired and under the same keys is answered from
    /// memory; any other is first checked for what it says of itself (size, shape, issuer,
    /// type, audience, expiry), then counted against its source address's budget of signature
    /// checks, and only then verified with its issuer's keys.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        source: std::net::IpAddr,
    ) -> Result<Arc<Caller>, AuthError> {
        let token = bearer_token(authorization)?;
        let now = jiff::Timestamp::now().as_second();
        if let Some((caller, (issuer, generation))) = self.verified.get(token, now)
            && self
                .issuers
                .get(issuer)
                .is_some_and(|i| i.keys.generation() == generation)
        {
            return Ok(caller);
        }
        let unverified = Unverified::read(token)?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| unverified.iss.as_deref() == Some(i.url.as_str()))
            .ok_or(AuthError::Unverifiable(
                "it was issued by an issuer kubegate does not trust",
            ))?;
        issuer.precheck(&unverified, now)?;
        if let Some(budget) = &self.budget
            && !budget.allow(source)
        {
            return Err(AuthError::TooManyUnverified);
        }
        let header = &unverified.header;
        let (keys, generation) = issuer
            .keys
            .find(header.alg, header.kid.as_deref())
            .await
            .map_err(|missing| match missing {
                Missing::NoSuchKey => AuthError::UnknownKey {
                    algorithm: header.alg,
                    kid: header.kid.clone(),
                },
                Missing::NotLoaded(why) => {
                    tracing::warn!(issuer = %issuer.url, %why, "a token waits for keys not loaded");
                    AuthError::KeysUnavailable {
                        issuer: issuer.url.clone(),
                        why,
                    }
                }
            })?;
        let claims = issuer.verify(token, &keys, now)?;
        // Validation requires `exp`; a token without a numeric one is never cached.
        let expires = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let caller = Arc::new(issuer.caller(claims, &self.never)?);
        // Kept as long as verification would accept it again: until `exp` plus the leeway.
        self.verified.insert(
            token,
            Arc::clone(&caller),
            expires.saturating_add(issuer.leeway()),
            now,
            (index, generation),
        );
        Ok(caller)
    }
}

/// What a token says of itself, read without checking its signature.
pub struct Unverified {
    header: jsonwebtoken::Header,
    iss: Option<String>,
    audiences: Vec<String>,
    exp: Option<i64>,
    typ: Option<String>,
}

impl Unverified {
    /// Reads a compact JWS's header and claims, refusing what is not one.
    fn read(token: &str) -> Result<Unverified, AuthError> {
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
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segments[1])
            .map_err(|_| AuthError::Unverifiable("its claims are not base64url"))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::Unverifiable("its claims are not a JSON object"))?;
        Ok(Unverified {
            typ: header.typ.clone(),
            header,
            iss: claims.iss,
            audiences: match claims.aud {
                Some(Audience::One(aud)) => vec![aud],
                Some(Audience::Many(auds)) => auds,
                None => Vec::new(),
            },
            exp: claims.exp.and_then(|e| e.as_i64()),
        })
    }
}

/// The claims a precheck reads, unverified.
#[derive(serde::Deserialize)]
struct Claims {
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
        ErrorKind::Base64(_) | ErrorKind::InvalidToken | ErrorKind::Provider(_) => {
            "it is cut short or corrupted"
        }
        _ => "it is not a valid token",
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

#[cfg(test)]
mod tests;
