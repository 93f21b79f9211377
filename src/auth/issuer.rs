//! One trusted issuer: what its tokens must say (audience, lifetime, type, required claims) and
//! how their claims become a Kubernetes user (prefixed names, uid, extra, tenant).

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::keys::{Key, KeySet};
use super::{AuthError, Caller, Unverified, never_impersonated};
use crate::config::{JwtConfig, TenantMapping};

/// Claims that belong to one token rather than to its caller (checked, then not kept as tags).
const PER_TOKEN_CLAIMS: &[&str] = &["exp", "iat", "nbf", "jti"];

pub struct Issuer {
    pub url: String,
    audiences: Vec<String>,
    token_type: Option<String>,
    leeway: u64,
    pub keys: Arc<KeySet>,
    username: (String, String),
    groups: Option<(String, String)>,
    uid: Option<String>,
    extra: Vec<(String, String)>,
    rules: Vec<Rule>,
    tenant: Tenant,
}

struct Rule {
    claim: String,
    value: String,
    message: Option<String>,
}

enum Tenant {
    Claim(String),
    GroupPrefix(String),
    Fixed(String),
}

impl Issuer {
    pub fn new(config: &JwtConfig, keys: KeySet, leeway: u64, audiences: Vec<String>) -> Issuer {
        let mappings = &config.claim_mappings;
        let prefixed = |c: &crate::config::PrefixedClaim| {
            (c.claim.clone(), c.prefix.clone().unwrap_or_default())
        };
        Issuer {
            url: config.issuer.url.clone(),
            audiences,
            token_type: config.issuer.token_type.clone(),
            leeway,
            keys: Arc::new(keys),
            username: prefixed(&mappings.username),
            groups: mappings.groups.as_ref().map(prefixed),
            uid: mappings.uid.as_ref().map(|u| u.claim.clone()),
            extra: mappings
                .extra
                .iter()
                .map(|e| (e.key.clone(), e.claim.clone()))
                .collect(),
            rules: config
                .claim_validation_rules
                .iter()
                .map(|r| Rule {
                    claim: r.claim.clone().unwrap_or_default(),
                    value: r.required_value.clone().unwrap_or_default(),
                    message: r.message.clone(),
                })
                .collect(),
            tenant: match &config.tenant {
                TenantMapping {
                    claim: Some(claim), ..
                } => Tenant::Claim(claim.clone()),
                TenantMapping {
                    group_prefix: Some(prefix),
                    ..
                } => Tenant::GroupPrefix(prefix.clone()),
                TenantMapping { value, .. } => Tenant::Fixed(value.clone().unwrap_or_default()),
            },
        }
    }

    /// The clock skew allowed, in seconds.
    pub fn leeway(&self) -> i64 {
        i64::try_from(self.leeway).unwrap_or(i64::MAX)
    }

    /// Refuses, before any signature is checked, a token whose unverified claims and header
    /// already fail this issuer's rules.
    pub fn precheck(&self, token: &Unverified, now: i64) -> Result<(), AuthError> {
        if let Some(wanted) = &self.token_type
            && !same_type(token.typ.as_deref(), wanted)
        {
            return Err(AuthError::WrongType {
                found: token.typ.clone(),
                wanted: wanted.clone(),
            });
        }
        if !token.audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(AuthError::Unverifiable(
                "it is not meant for kubegate (aud): it was minted for another resource",
            ));
        }
        let leeway = self.leeway();
        match token.exp {
            None => Err(AuthError::Unverifiable(
                "it lacks one of the claims exp, iss, aud",
            )),
            Some(exp) if exp.saturating_add(leeway) < now => {
                Err(AuthError::Unverifiable("it has expired"))
            }
            Some(_) => Ok(()),
        }
    }

    /// Verifies a token against one of `keys` (all of the header's algorithm); returns its claims.
    pub fn verify(
        &self,
        token: &str,
        keys: &[Arc<Key>],
        now: i64,
    ) -> Result<Map<String, Value>, AuthError> {
        let mut first_error = None;
        for key in keys {
            match jsonwebtoken::decode::<Map<String, Value>>(
                token,
                &key.key,
                &self.validation(key.algorithm),
            ) {
                Ok(data) => {
                    let claims = data.claims;
                    let leeway = self.leeway();
                    if claims
                        .get("iat")
                        .and_then(Value::as_f64)
                        .is_some_and(|iat| iat > now.saturating_add(leeway) as f64)
                    {
                        return Err(AuthError::Unverifiable("it was issued in the future (iat)"));
                    }
                    return Ok(claims);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        // `keys` is never empty (the key set answers NoSuchKey instead).
        Err(first_error.map_or(
            AuthError::Unverifiable("no key could check it"),
            AuthError::Rejected,
        ))
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.url]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        validation
    }

    /// Maps verified claims to the caller: the rules first, then prefixed names (refused if
    /// empty, reserved or on `never`), uid, extra and tenant; every other claim becomes a tag.
    pub fn caller(
        &self,
        mut claims: Map<String, Value>,
        never: &[String],
    ) -> Result<Caller, AuthError> {
        for rule in &self.rules {
            let holds = match claims.get(&rule.claim) {
                Some(Value::String(s)) => *s == rule.value,
                Some(v @ (Value::Bool(_) | Value::Number(_))) => {
                    serde_json::from_str::<Value>(&rule.value).is_ok_and(|wanted| wanted == *v)
                }
                _ => false,
            };
            if !holds {
                return Err(AuthError::Rule {
                    claim: rule.claim.clone(),
                    message: rule.message.clone(),
                });
            }
        }
        // Read before the mapped claims are taken out: uid and extra may name the same claims.
        let uid = match &self.uid {
            Some(claim) => {
                let uid = claims.get(claim).and_then(Value::as_str).map(str::to_owned);
                if let Some(uid) = &uid {
                    check_printable(uid, claim)?;
                }
                uid
            }
            None => None,
        };
        let mut extra = BTreeMap::new();
        for (key, claim) in &self.extra {
            let values = match claims.get(claim) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| not_strings(claim))?,
                Some(_) => return Err(not_strings(claim)),
            };
            for value in &values {
                check_printable(value, claim)?;
            }
            extra.insert(key.clone(), values);
        }
        let (claim, prefix) = &self.username;
        if claim == "email"
            && claims
                .get("email_verified")
                .is_some_and(|v| v != &Value::Bool(true))
        {
            // As the API server: an unverified address names nobody.
            return Err(AuthError::Claim {
                claim: "email_verified".into(),
                problem: "is not true, so the email cannot name the caller",
            });
        }
        let username = match claim.as_str() {
            // The email may also be a tag: read it without taking it.
            "email" => claims
                .get("email")
                .cloned()
                .and_then(|v| v.as_str().map(str::to_owned)),
            _ => take_string(&mut claims, claim)?,
        }
        .ok_or_else(|| missing(claim))?;
        let username = kubernetes_name(prefix, &username, claim, never)?;
        let raw_groups = match &self.groups {
            Some((claim, _)) => take_groups(&mut claims, claim)?,
            None => Vec::new(),
        };
        let groups = match &self.groups {
            Some((claim, prefix)) => raw_groups
                .iter()
                .map(|g| kubernetes_name(prefix, g, claim, never))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let tenant = match &self.tenant {
            Tenant::Claim(claim) => {
                take_string(&mut claims, claim)?.ok_or_else(|| missing(claim))?
            }
            Tenant::Fixed(value) => value.clone(),
            Tenant::GroupPrefix(prefix) => {
                let mut tenants = raw_groups
                    .iter()
                    .filter_map(|g| g.strip_prefix(prefix.as_str()));
                match (tenants.next(), tenants.next()) {
                    (Some(tenant), None) if !tenant.is_empty() => tenant.to_owned(),
                    (_, second) => {
                        let claim = self
                            .groups
                            .as_ref()
                            .map(|g| g.0.clone())
                            .unwrap_or_default();
                        let problem = if second.is_some() {
                            "names more than one tenant group"
                        } else {
                            "names no tenant group"
                        };
                        return Err(AuthError::Claim { claim, problem });
                    }
                }
            }
        };
        check_printable(&tenant, "tenant")?;
        let scopes = scopes(&claims);
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned);
        claims.remove("email");
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
            issuer: Some(self.url.clone()),
            uid,
            extra,
            scopes,
        })
    }
}

/// The token's scopes: `scope` (a space-separated string, RFC 9068) or `scp` (a list, as some
/// providers send).
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    if let Some(Value::String(s)) = claims.get("scope") {
        scopes.extend(s.split_ascii_whitespace().map(str::to_owned));
    }
    match claims.get("scp") {
        Some(Value::String(s)) => scopes.extend(s.split_ascii_whitespace().map(str::to_owned)),
        Some(Value::Array(items)) => {
            scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

/// JOSE `typ` values compare case-insensitively, with `application/` optional (RFC 7515 §4.1.9).
fn same_type(found: Option<&str>, wanted: &str) -> bool {
    let bare = |t: &str| {
        let t = t.trim().to_ascii_lowercase();
        t.strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(t)
    };
    found.is_some_and(|found| bare(found) == bare(wanted))
}

fn missing(claim: &str) -> AuthError {
    AuthError::Claim {
        claim: claim.to_owned(),
        problem: "is missing",
    }
}

fn not_strings(claim: &str) -> AuthError {
    AuthError::Claim {
        claim: claim.to_owned(),
        problem: "is not a list of strings",
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
    match claims.remove(claim) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s),
                _ => Err(not_strings(claim)),
            })
            .collect(),
        Some(_) => Err(not_strings(claim)),
    }
}

/// Prefixes a claim into a Kubernetes user or group name, refusing empty names, names
/// Kubernetes reserves and names on the deny-list.
pub fn kubernetes_name(
    prefix: &str,
    value: &str,
    claim: &str,
    never: &[String],
) -> Result<String, AuthError> {
    check_printable(value, claim)?;
    if value.is_empty() {
        return Err(AuthError::Claim {
            claim: claim.to_owned(),
            problem: "is empty",
        });
    }
    let name = format!("{prefix}{value}");
    if never_impersonated(&name, never) {
        return Err(AuthError::Reserved(name));
    }
    Ok(name)
}

/// Names travel in HTTP headers (`Impersonate-User`): visible ASCII and inner spaces only. Edge
/// spaces are refused because the API server trims header values: Cedar would judge `"alice "`
/// while Kubernetes saw `alice`.
pub fn check_printable(value: &str, claim: &str) -> Result<(), AuthError> {
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
