//! The `[auth]` section: which JWT issuers kubegate trusts and how their claims become
//! Kubernetes names, shaped after the kube-apiserver's structured `AuthenticationConfiguration`
//! (`jwt[].issuer.url`, `claimMappings.username.prefix`, `claimValidationRules`, ...).
//!
//! ```toml
//! [[auth.jwt]]
//! issuer.url = "https://login.example.com/realms/platform"
//! issuer.audiences = ["https://kubegate.example.com/mcp"]
//! claimMappings.username = { claim = "preferred_username", prefix = "sso:" }
//! claimMappings.groups = { claim = "groups", prefix = "sso:" }
//! tenant = { claim = "tenant" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The most clock skew `leeway_seconds` may allow: a larger one would keep expired tokens alive.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// How bearer JWTs are verified and mapped to a caller. (Unknown keys land in `legacy` and are
/// refused by [`AuthConfig::check`].)
#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    /// The issuers whose tokens are accepted, each with its own keys and name mapping.
    #[serde(default)]
    pub jwt: Vec<JwtConfig>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// This MCP endpoint's canonical URL, as clients name it (RFC 8707 and 9728 `resource`),
    /// e.g. `https://kubegate.example.com/mcp`; without it, `https://<the request's host>/mcp`.
    #[serde(default)]
    pub resource: Option<String>,
    /// The authorization servers a client may get tokens from, in the protected-resource
    /// metadata (RFC 9728); without them, every issuer's URL.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// The scopes the metadata lists (`scopes_supported`); without them, those `scopes` requires.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// The scopes a token must carry (all of them) for each action group's calls; a token
    /// without them is answered 403 `insufficient_scope`. No scope is required by default.
    #[serde(default)]
    pub scopes: ScopeRules,
    /// User and group names kubegate never impersonates, whatever a token says: exact names,
    /// or prefixes ending in `*`. `system:*` is always refused; the default adds `kubeadm:*`
    /// (kubeadm binds `kubeadm:cluster-admins` to cluster-admin). List here the names your
    /// cluster binds to powerful roles.
    #[serde(default = "default_never_impersonate")]
    pub never_impersonate: Vec<String>,
    /// The single-issuer form of earlier releases, read only to say how to rewrite it.
    #[serde(flatten)]
    pub legacy: BTreeMap<String, toml::Value>,
}

/// The scopes each action group's calls need (`read` also covers resources and prompts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRules {
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub destructive: Vec<String>,
}

impl ScopeRules {
    /// Every scope some call requires, each once.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for scope in self.read.iter().chain(&self.write).chain(&self.destructive) {
            if !all.contains(scope) {
                all.push(scope.clone());
            }
        }
        all
    }
}

/// One trusted issuer (`AuthenticationConfiguration.jwt[]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtConfig {
    pub issuer: IssuerConfig,
    pub claim_mappings: ClaimMappings,
    /// Claims a token must carry with a given value.
    #[serde(default)]
    pub claim_validation_rules: Vec<ClaimValidationRule>,
    /// Where the caller's tenant comes from (kubegate's own addition).
    pub tenant: TenantMapping,
}

/// Who issues the tokens, for whom, and where their keys are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssuerConfig {
    /// The `iss` of its tokens; also where discovery starts (`<url>/.well-known/openid-configuration`).
    pub url: String,
    /// A discovery document elsewhere than under `url` (its `issuer` must still be `url`).
    #[serde(default, rename = "discoveryURL")]
    pub discovery_url: Option<String>,
    /// The key set's URL, skipping discovery (kubegate's addition).
    #[serde(default, rename = "jwksURL")]
    pub jwks_url: Option<String>,
    /// The CA (PEM: a file, or the certificates themselves) that signs the issuer's HTTPS
    /// certificate; without it, the system's roots.
    #[serde(default)]
    pub certificate_authority: Option<String>,
    /// Accepted `aud` values; a token must name one of them. Without them, `[auth] resource`
    /// (kubegate's canonical URL, as RFC 8707 resource indicators name it).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Only `MatchAny` (the API server's only policy too).
    #[serde(default)]
    pub audience_match_policy: Option<String>,
    /// Static public keys instead of discovery (kubegate's addition): nothing is fetched.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// The JOSE `typ` every token's header must carry, e.g. `at+jwt` (RFC 9068), so that an
    /// ID token is not taken for an access token (kubegate's addition).
    #[serde(default)]
    pub token_type: Option<String>,
}

/// How claims become the Kubernetes user (`claimMappings`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMappings {
    pub username: PrefixedClaim,
    #[serde(default)]
    pub groups: Option<PrefixedClaim>,
    #[serde(default)]
    pub uid: Option<ClaimName>,
    /// Claims passed to Kubernetes as the user's extra values (`Impersonate-Extra-<key>`).
    #[serde(default)]
    pub extra: Vec<ExtraMapping>,
}

/// A claim and the prefix its values get in Kubernetes. The prefix is required, as the API
/// server requires it: `""` keeps names as they are, and has to be said.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixedClaim {
    pub claim: String,
    #[serde(default)]
    pub prefix: Option<String>,
    /// CEL is not supported; present only to refuse it clearly.
    #[serde(default)]
    pub expression: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimName {
    pub claim: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraMapping {
    /// A domain-prefixed, lowercase key, e.g. `example.com/department`.
    pub key: String,
    pub claim: String,
    #[serde(default)]
    pub value_expression: Option<String>,
}

/// A claim the token must carry, equal to `requiredValue`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimValidationRule {
    #[serde(default)]
    pub claim: Option<String>,
    #[serde(default)]
    pub required_value: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Where a caller's tenant comes from: exactly one of a claim, the group with a prefix, or a
/// fixed value (for an issuer a tenant brings: its tokens cannot name another tenant).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantMapping {
    #[serde(default)]
    pub claim: Option<String>,
    #[serde(default)]
    pub group_prefix: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// One static verification key: a PEM public key and the JWS algorithm it verifies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub file: PathBuf,
    /// `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384` or `EdDSA`.
    pub algorithm: String,
    /// If set, only tokens whose header names this `kid` are checked against this key.
    #[serde(default)]
    pub kid: Option<String>,
}

fn default_leeway() -> u64 {
    30
}

fn default_never_impersonate() -> Vec<String> {
    vec!["kubeadm:*".to_owned()]
}

impl AuthConfig {
    /// Makes the key files and CA files relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for jwt in &mut self.jwt {
            for key in &mut jwt.issuer.keys {
                if key.file.is_relative() {
                    key.file = base.join(&key.file);
                }
            }
            if let Some(ca) = jwt.issuer.certificate_authority.as_mut()
                && !ca.trim_start().starts_with("-----BEGIN")
                && Path::new(ca.as_str()).is_relative()
            {
                *ca = base.join(&*ca).display().to_string();
            }
        }
    }

    /// Checks what serde cannot: a configuration that parses but would be unsafe or useless.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |text: String| Err(ConfigError::Invalid(text));
        if !self.legacy.is_empty() {
            return invalid(self.migration());
        }
        if self.jwt.is_empty() {
            return invalid(
                "[auth] lists no issuer: add one [[auth.jwt]] (issuer.url, issuer.audiences, \
                 claimMappings, tenant)"
                    .into(),
            );
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return invalid(format!(
                "auth.leeway_seconds is {}: at most {MAX_LEEWAY_SECONDS} (a larger skew keeps \
                 expired tokens alive)",
                self.leeway_seconds
            ));
        }
        for (i, jwt) in self.jwt.iter().enumerate() {
            if self.audiences(jwt).is_empty() {
                return invalid(format!(
                    "auth.jwt[{i}] ({}): issuer.audiences is empty and [auth] resource is not set: \
                     say which audience tokens must be minted for (kubegate's canonical URL, \
                     e.g. resource = \"https://kubegate.example.com/mcp\")",
                    jwt.issuer.url
                ));
            }
            jwt.check().map_err(|problem| {
                ConfigError::Invalid(format!("auth.jwt[{i}] ({}): {problem}", jwt.issuer.url))
            })?;
        }
        for (i, a) in self.jwt.iter().enumerate() {
            for b in &self.jwt[i + 1..] {
                if a.issuer.url == b.issuer.url {
                    return invalid(format!("auth.jwt lists the issuer {} twice", a.issuer.url));
                }
                overlapping_prefixes(a, b)?;
            }
        }
        for scope in self.scopes.all() {
            if scope.is_empty() || scope.contains([' ', '"', '\\']) {
                return invalid(format!(
                    "auth.scopes holds {scope:?}: a scope is one word, without quotes"
                ));
            }
        }
        Ok(())
    }

    /// The error that tells how to rewrite the single-issuer form as `[[auth.jwt]]`.
    fn migration(&self) -> String {
        let known = [
            "issuer",
            "audiences",
            "keys",
            "username_claim",
            "groups_claim",
            "tenant_claim",
            "username_prefix",
            "group_prefix",
        ];
        if let Some(unknown) = self.legacy.keys().find(|k| !known.contains(&k.as_str())) {
            return format!("unknown field `{unknown}` in [auth]");
        }
        let text = |key: &str, default: &str| {
            self.legacy
                .get(key)
                .and_then(toml::Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        let quoted = |key: &str| {
            self.legacy
                .get(key)
                .map_or_else(|| "[]".to_owned(), ToString::to_string)
        };
        format!(
            "[auth] uses the single-issuer form of earlier kubegate releases (issuer, \
             audiences, keys, ..._claim, ..._prefix); write it as one [[auth.jwt]] instead. \
             These lines keep today's behaviour exactly, including unprefixed names (consider \
             a prefix such as \"sso:\", and adjust your policies):\n\n\
             [[auth.jwt]]\n\
             issuer.url = {issuer:?}\n\
             issuer.audiences = {audiences}\n\
             issuer.keys = {keys}\n\
             claimMappings.username = {{ claim = {username:?}, prefix = {user_prefix:?} }}\n\
             claimMappings.groups = {{ claim = {groups:?}, prefix = {group_prefix:?} }}\n\
             tenant = {{ claim = {tenant:?} }}\n",
            issuer = text("issuer", ""),
            audiences = quoted("audiences"),
            keys = quoted("keys"),
            username = text("username_claim", "sub"),
            user_prefix = text("username_prefix", ""),
            groups = text("groups_claim", "groups"),
            group_prefix = text("group_prefix", ""),
            tenant = text("tenant_claim", "tenant"),
        )
    }

    /// The audiences an issuer's tokens must name: its own list, or kubegate's resource URL.
    pub fn audiences(&self, jwt: &JwtConfig) -> Vec<String> {
        if jwt.issuer.audiences.is_empty() {
            self.resource.iter().cloned().collect()
        } else {
            jwt.issuer.audiences.clone()
        }
    }

    /// The authorization servers the protected-resource metadata names.
    pub fn authorization_servers(&self) -> Vec<String> {
        if self.authorization_servers.is_empty() {
            self.jwt.iter().map(|j| j.issuer.url.clone()).collect()
        } else {
            self.authorization_servers.clone()
        }
    }

    /// The scopes the protected-resource metadata lists.
    pub fn scopes_supported(&self) -> Vec<String> {
        if self.scopes_supported.is_empty() {
            self.scopes.all()
        } else {
            self.scopes_supported.clone()
        }
    }
}

impl JwtConfig {
    fn check(&self) -> Result<(), String> {
        let issuer = &self.issuer;
        if !issuer.url.starts_with("https://") {
            return Err("issuer.url must be an https:// URL".into());
        }
        if issuer.audiences.iter().any(String::is_empty) {
            return Err("issuer.audiences holds an empty audience".into());
        }
        if let Some(policy) = &issuer.audience_match_policy
            && policy != "MatchAny"
        {
            return Err(format!(
                "issuer.audienceMatchPolicy is {policy:?}: only \"MatchAny\" exists"
            ));
        }
        for (name, url) in [
            ("discoveryURL", &issuer.discovery_url),
            ("jwksURL", &issuer.jwks_url),
        ] {
            if let Some(url) = url
                && !url.starts_with("https://")
            {
                return Err(format!(
                    "issuer.{name} must be an https:// URL (keys fetched in the clear could be \
                     replaced)"
                ));
            }
        }
        if !issuer.keys.is_empty() && (issuer.discovery_url.is_some() || issuer.jwks_url.is_some())
        {
            return Err(
                "issuer.keys are static keys: they cannot be combined with discoveryURL or jwksURL"
                    .into(),
            );
        }
        if let Some(typ) = &issuer.token_type
            && typ.trim().is_empty()
        {
            return Err("issuer.tokenType is empty".into());
        }
        let mappings = &self.claim_mappings;
        let claims = std::iter::once(("username", &mappings.username))
            .chain(mappings.groups.iter().map(|g| ("groups", g)));
        for (name, mapping) in claims {
            if mapping.expression.is_some() {
                return Err(format!(
                    "claimMappings.{name}.expression: CEL expressions are not supported; map a \
                     claim with `claim` and `prefix`"
                ));
            }
            if mapping.claim.is_empty() {
                return Err(format!("claimMappings.{name}.claim is empty"));
            }
            if mapping.prefix.is_none() {
                return Err(format!(
                    "claimMappings.{name}.prefix is required: it keeps this issuer's names apart \
                     from Kubernetes' own and other issuers' (e.g. \"sso:\"); write \"\" to use \
                     the names exactly as the token has them"
                ));
            }
        }
        for extra in &mappings.extra {
            if extra.value_expression.is_some() {
                return Err(format!(
                    "claimMappings.extra {:?}: CEL expressions are not supported; name a claim",
                    extra.key
                ));
            }
            if !valid_extra_key(&extra.key) {
                return Err(format!(
                    "claimMappings.extra key {:?} must be a lowercase, domain-prefixed path \
                     (e.g. \"example.com/department\")",
                    extra.key
                ));
            }
        }
        for rule in &self.claim_validation_rules {
            if rule.expression.is_some() {
                return Err(
                    "claimValidationRules: CEL expressions are not supported; use `claim` and \
                     `requiredValue`"
                        .into(),
                );
            }
            if rule.claim.as_deref().is_none_or(str::is_empty) || rule.required_value.is_none() {
                return Err(
                    "claimValidationRules: each rule needs `claim` and `requiredValue`".into(),
                );
            }
        }
        let tenant = &self.tenant;
        let ways = [&tenant.claim, &tenant.group_prefix, &tenant.value]
            .iter()
            .filter(|w| w.is_some())
            .count();
        if ways != 1 {
            return Err("tenant needs exactly one of `claim`, `groupPrefix` or `value`".into());
        }
        if tenant.group_prefix.is_some() && mappings.groups.is_none() {
            return Err("tenant.groupPrefix needs claimMappings.groups".into());
        }
        if [&tenant.claim, &tenant.group_prefix, &tenant.value]
            .iter()
            .any(|w| w.as_deref() == Some(""))
        {
            return Err("tenant: an empty claim, prefix or value".into());
        }
        Ok(())
    }
}

/// The prefixes a source of names (an issuer, client certificates) gives its users and, if it
/// maps any, its groups.
pub type NamePrefixes<'a> = (&'a str, Option<&'a str>);

/// Which kind of name (`"username"` or `"group"`) two sources could both make, if any: one
/// prefix starting with the other (`""` overlaps everything) lets either source name the other's.
pub fn overlapping(a: NamePrefixes<'_>, b: NamePrefixes<'_>) -> Option<&'static str> {
    let overlap = |x: &str, y: &str| x.starts_with(y) || y.starts_with(x);
    if overlap(a.0, b.0) {
        return Some("username");
    }
    match (a.1, b.1) {
        (Some(x), Some(y)) if overlap(x, y) => Some("group"),
        _ => None,
    }
}

impl JwtConfig {
    /// This issuer's username prefix and, if it maps groups, its group prefix.
    pub fn prefixes(&self) -> NamePrefixes<'_> {
        let mappings = &self.claim_mappings;
        (
            mappings.username.prefix.as_deref().unwrap_or_default(),
            mappings
                .groups
                .as_ref()
                .map(|g| g.prefix.as_deref().unwrap_or_default()),
        )
    }
}

/// Two issuers whose names could collide: one's tokens could then act as the other's users.
fn overlapping_prefixes(a: &JwtConfig, b: &JwtConfig) -> Result<(), ConfigError> {
    match overlapping(a.prefixes(), b.prefixes()) {
        None => Ok(()),
        Some(kind) => Err(ConfigError::Invalid(format!(
            "auth.jwt: the {kind} prefixes of {} and {} overlap, so one issuer's tokens could \
             name the other's {kind}s; give each issuer a prefix of its own (e.g. \"corp:\" and \
             \"team-b:\")",
            a.issuer.url, b.issuer.url,
        ))),
    }
}

/// Kubernetes' rule for user extra keys: lowercase, domain-prefixed (here required), and not in
/// the domains Kubernetes keeps for itself.
fn valid_extra_key(key: &str) -> bool {
    let Some((domain, path)) = key.split_once('/') else {
        return false;
    };
    let reserved = ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|r| domain == *r || domain.ends_with(&format!(".{r}")));
    !reserved
        && domain.contains('.')
        && !path.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._/".contains(&b))
}
