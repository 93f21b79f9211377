//! How an MCP client finds where to get a token: the protected-resource metadata of RFC 9728
//! (at `/.well-known/oauth-protected-resource` and `.../mcp`), and the `resource_metadata`
//! parameter every `401`'s `WWW-Authenticate` challenge carries to point at it.

use serde_json::{Value, json};

use crate::config::AuthConfig;

/// What the metadata document says about kubegate as an OAuth protected resource.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    resource: Option<String>,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
}

/// The well-known path of the metadata (RFC 9728 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

impl ProtectedResource {
    /// From `[auth]`; none without it (stdio: no tokens at all).
    pub fn from_config(auth: Option<&AuthConfig>) -> Option<ProtectedResource> {
        let auth = auth?;
        Some(ProtectedResource {
            resource: auth.resource.clone(),
            authorization_servers: auth.authorization_servers(),
            scopes: auth.scopes_supported(),
        })
    }

    /// The resource identifier: as configured, or the MCP endpoint at the host the client
    /// asked (already checked to be one of kubegate's own).
    pub fn resource(&self, host: &str) -> String {
        self.resource
            .clone()
            .unwrap_or_else(|| format!("https://{host}/mcp"))
    }

    /// Where the metadata of `resource` is: the well-known path between its host and its path.
    pub fn metadata_url(&self, host: &str) -> String {
        let resource = self.resource(host);
        let (scheme, rest) = resource.split_once("://").unwrap_or(("https", &resource));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = path.split(['?', '#']).next().unwrap_or("");
        format!(
            "{scheme}://{authority}{METADATA_PATH}{}",
            path.trim_end_matches('/')
        )
    }

    /// The metadata document.
    pub fn document(&self, host: &str) -> Value {
        let mut document = json!({
            "resource": self.resource(host),
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": ["header"],
            "resource_name": "kubegate",
        });
        if !self.scopes.is_empty() {
            document["scopes_supported"] = json!(self.scopes);
        }
        document
    }
}

/// Adds `resource_metadata="<url>"` to the `WWW-Authenticate` challenge of a `401`, or of a
/// `403` for missing scopes (so a client can step up from either alone).
pub fn point_to_metadata<B>(
    mut response: http::Response<B>,
    url: Option<&str>,
) -> http::Response<B> {
    let Some(url) = url else {
        return response;
    };
    let challenged = response.status() == http::StatusCode::UNAUTHORIZED
        || (response.status() == http::StatusCode::FORBIDDEN
            && response
                .headers()
                .contains_key(http::header::WWW_AUTHENTICATE));
    if !challenged {
        return response;
    }
    let headers = response.headers_mut();
    let challenge = headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Bearer realm=\"kubegate\"")
        .to_owned();
    let url = url.replace(['"', '\\'], "");
    if let Ok(value) =
        http::HeaderValue::from_str(&format!("{challenge}, resource_metadata=\"{url}\""))
    {
        headers.insert(http::header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(configured: Option<&str>) -> ProtectedResource {
        ProtectedResource {
            resource: configured.map(str::to_owned),
            authorization_servers: vec!["https://idp.example.com/realms/k".into()],
            scopes: Vec::new(),
        }
    }

    #[test]
    fn the_metadata_url_puts_the_well_known_path_between_host_and_path() {
        let derived = resource(None);
        assert_eq!(derived.resource("gw:8443"), "https://gw:8443/mcp");
        assert_eq!(
            derived.metadata_url("gw:8443"),
            "https://gw:8443/.well-known/oauth-protected-resource/mcp"
        );
        let configured = resource(Some("https://kubegate.example.com/mcp/"));
        assert_eq!(
            configured.metadata_url("ignored"),
            "https://kubegate.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = resource(Some("https://kubegate.example.com"));
        assert_eq!(
            root.metadata_url("ignored"),
            "https://kubegate.example.com/.well-known/oauth-protected-resource"
        );
        let document = configured.document("ignored");
        assert_eq!(document["resource"], "https://kubegate.example.com/mcp/");
        assert_eq!(
            document["authorization_servers"][0],
            "https://idp.example.com/realms/k"
        );
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
        assert!(document.get("scopes_supported").is_none());
    }

    #[test]
    fn only_a_401_gets_the_pointer() {
        let url = Some("https://gw/.well-known/oauth-protected-resource/mcp");
        let mut refused = http::Response::new(());
        *refused.status_mut() = http::StatusCode::UNAUTHORIZED;
        refused.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"kubegate\", error=\"invalid_token\""),
        );
        let refused = point_to_metadata(refused, url);
        assert_eq!(
            refused.headers()[http::header::WWW_AUTHENTICATE],
            "Bearer realm=\"kubegate\", error=\"invalid_token\", resource_metadata=\"https://gw/.well-known/oauth-protected-resource/mcp\""
        );
        let fine = point_to_metadata(http::Response::new(()), url);
        assert!(fine.headers().get(http::header::WWW_AUTHENTICATE).is_none());
    }
}
