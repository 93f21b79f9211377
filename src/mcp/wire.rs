//! The 2026-07-28 revision's rules on the wire (the stateless revision): how a message is
//! recognised as one, what it must carry (`params._meta` with its protocol version and client
//! capabilities; `Mcp-Method` and `Mcp-Name` headers agreeing with the body), in which order
//! violations are reported, and how results look (`resultType`, caching hints on lists, the
//! server named in `_meta`).

use serde_json::{Map, Value, json};

use super::{Incoming, McpError, STATELESS_VERSIONS, capabilities, supported_versions};

/// `params._meta` keys of the stateless revision.
pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";
/// The `resultType` of a result that is complete (kubegate never asks for more input).
pub const COMPLETE: &str = "complete";
/// How long a client may keep a list kubegate gave it: lists follow the caller's policies,
/// which a reload can change.
pub const LIST_TTL_MS: u64 = 30_000;
/// Methods of the initialize revisions that the stateless revision does not have.
pub const REMOVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The revision a message was sent under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// An initialize revision (with or without a session).
    Initialize { version: String },
    /// The stateless revision.
    Stateless { version: String },
}

impl Wire {
    pub fn version(&self) -> &str {
        match self {
            Wire::Initialize { version } | Wire::Stateless { version } => version,
        }
    }

    pub fn is_stateless(&self) -> bool {
        matches!(self, Wire::Stateless { .. })
    }

    /// A result as this revision has results look: the stateless revision adds `resultType`,
    /// the server's identity in `_meta` and, for lists (`ttl_ms`), caching hints.
    pub fn decorate(&self, result: Value, ttl_ms: Option<u64>) -> Value {
        let (Wire::Stateless { .. }, Value::Object(mut result)) = (self, result.clone()) else {
            return result;
        };
        result
            .entry("resultType")
            .or_insert_with(|| Value::from(COMPLETE));
        if let Some(ttl) = ttl_ms {
            result.entry("ttlMs").or_insert_with(|| Value::from(ttl));
            result
                .entry("cacheScope")
                .or_insert_with(|| Value::from("private"));
        }
        match result.entry("_meta").or_insert_with(|| json!({})) {
            Value::Object(meta) => {
                meta.insert(SERVER_INFO_KEY.to_owned(), server_info());
            }
            other => *other = result_meta(),
        }
        Value::Object(result)
    }
}

/// How a message is to be read.
pub enum Recognised {
    Stateless,
    Initialize,
}

/// A message is the stateless revision's if it says so: its `_meta` names a protocol version,
/// its `MCP-Protocol-Version` header is a stateless revision, or its method exists only there.
pub fn recognise(incoming: &Incoming<'_>, method: &str, params: &Map<String, Value>) -> Recognised {
    let meta_names_version = params
        .get("_meta")
        .and_then(Value::as_object)
        .is_some_and(|meta| meta.contains_key(PROTOCOL_VERSION_KEY));
    let header_is_stateless = incoming
        .protocol_version
        .is_some_and(|v| STATELESS_VERSIONS.contains(&v.trim()));
    let stateless_method = matches!(method, "server/discover" | "subscriptions/listen");
    if meta_names_version || header_is_stateless || stateless_method {
        Recognised::Stateless
    } else {
        Recognised::Initialize
    }
}

/// Checks a stateless message, in the order the revision reports violations: `_meta` first,
/// then the version header against it, then whether kubegate speaks that version, then the
/// method and name headers. Returns the version.
pub fn validate(
    incoming: &Incoming<'_>,
    id: Option<&Value>,
    method: &str,
    params: &mut Map<String, Value>,
) -> Result<String, McpError> {
    let missing = |key: &'static str| McpError::MissingMeta {
        id: id.cloned(),
        key,
        revision: STATELESS_VERSIONS[0],
    };
    let mismatch = |header: &'static str, problem: String| McpError::HeaderMismatch {
        id: id.cloned(),
        header,
        problem,
    };
    let meta = params
        .get("_meta")
        .and_then(Value::as_object)
        .ok_or_else(|| missing(PROTOCOL_VERSION_KEY))?;
    let version = meta
        .get(PROTOCOL_VERSION_KEY)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(PROTOCOL_VERSION_KEY))?
        .to_owned();
    if !meta
        .get(CLIENT_CAPABILITIES_KEY)
        .is_some_and(Value::is_object)
    {
        return Err(missing(CLIENT_CAPABILITIES_KEY));
    }
    match incoming.protocol_version.map(str::trim) {
        None if !incoming.headers => {}
        None => {
            return Err(mismatch(
                "MCP-Protocol-Version",
                format!("is missing; it must repeat the version in _meta ({version:?})"),
            ));
        }
        Some(header) if header != version => {
            return Err(mismatch(
                "MCP-Protocol-Version",
                format!("says {header:?} but params._meta says {version:?}"),
            ));
        }
        Some(_) => {}
    }
    if !STATELESS_VERSIONS.contains(&version.as_str()) {
        return Err(McpError::UnsupportedVersion {
            id: id.cloned(),
            requested: version,
        });
    }
    agree(
        &incoming.method_header,
        Some(method),
        "Mcp-Method",
        &mismatch,
    )?;
    let name = match method {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
        "resources/read" => params.get("uri").and_then(Value::as_str),
        _ => None,
    };
    if name.is_some() {
        agree(&incoming.name_header, name, "Mcp-Name", &mismatch)?;
    }
    Ok(version)
}

/// Every value of a header must equal `expected` once surrounding whitespace is trimmed.
fn agree(
    values: &[&str],
    expected: Option<&str>,
    header: &'static str,
    mismatch: &dyn Fn(&'static str, String) -> McpError,
) -> Result<(), McpError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    if values.is_empty() {
        return Err(mismatch(
            header,
            format!("is missing; it must be {expected:?}"),
        ));
    }
    if let Some(wrong) = values.iter().find(|v| v.trim() != expected) {
        return Err(mismatch(
            header,
            format!("says {:?} but the body says {expected:?}", wrong.trim()),
        ));
    }
    Ok(())
}

/// kubegate as an MCP `Implementation`.
pub fn server_info() -> Value {
    json!({
        "name": "kubegate",
        "title": "kubegate: policy-gated Kubernetes",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// A result's `_meta`: the server's identity.
pub fn result_meta() -> Value {
    json!({ SERVER_INFO_KEY: server_info() })
}

/// What `server/discover` answers: the versions kubegate speaks and what it can do. The same
/// for every caller.
pub fn discover_result() -> Value {
    json!({
        "supportedVersions": supported_versions(),
        "capabilities": capabilities(true),
        "instructions": "Kubernetes tools, run as you: every call is checked by policy and by \
                         Kubernetes RBAC, and audited. Start with list-namespaces to see where \
                         you may work.",
        "ttlMs": 300_000,
        "cacheScope": "public",
    })
}

#[cfg(test)]
mod tests {
    //! Whatever `_meta` and headers a stateless request carries, validation answers with the
    //! version or with one of the revision's errors, never a panic; a request that is right in
    //! every part passes.

    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn incoming<'a>(
        version: Option<&'a str>,
        method: Vec<&'a str>,
        name: Vec<&'a str>,
    ) -> Incoming<'a> {
        Incoming {
            caller: Arc::new(crate::auth::Caller {
                username: "alice".into(),
                groups: Vec::new(),
                tenant: String::new(),
                email: None,
                claims: Default::default(),
                ..Default::default()
            }),
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            transport: "streamable-http",
            session_id: None,
            protocol_version: version,
            method_header: method,
            name_header: name,
            headers: true,
            body: b"",
            gone: tokio_util::sync::CancellationToken::new(),
            peer: None,
        }
    }

    fn meta(version: &str) -> Value {
        json!({PROTOCOL_VERSION_KEY: version, CLIENT_CAPABILITIES_KEY: {}})
    }

    #[test]
    fn a_right_request_passes_and_each_wrong_part_is_named() {
        let mut params = json!({"name": "list-resources", "_meta": meta("2026-07-28")})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let good = incoming(
            Some(" 2026-07-28 "),
            vec!["tools/call"],
            vec!["list-resources "],
        );
        let version = validate(&good, Some(&json!(1)), "tools/call", &mut params);
        assert_eq!(version.ok().as_deref(), Some("2026-07-28"));
        let wrong_name = incoming(Some("2026-07-28"), vec!["tools/call"], vec!["delete_pod"]);
        let refused = validate(&wrong_name, Some(&json!(1)), "tools/call", &mut params);
        assert!(matches!(
            refused,
            Err(McpError::HeaderMismatch {
                header: "Mcp-Name",
                ..
            })
        ));
        let no_method = incoming(Some("2026-07-28"), vec![], vec!["list-resources"]);
        let refused = validate(&no_method, Some(&json!(1)), "tools/call", &mut params);
        assert!(matches!(
            refused,
            Err(McpError::HeaderMismatch {
                header: "Mcp-Method",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn any_meta_and_headers_give_a_version_or_a_revision_error(
            version in prop_oneof![Just("2026-07-28".to_owned()), "[ -~]{0,12}"],
            header in prop::option::of(prop_oneof![Just("2026-07-28".to_owned()), "[ -~]{0,12}"]),
            method_headers in prop::collection::vec("[ -~]{0,12}", 0..3),
            keep_capabilities in any::<bool>(),
            meta_is_object in any::<bool>(),
        ) {
            let mut meta = meta(&version);
            if !keep_capabilities {
                meta.as_object_mut().map(|m| m.remove(CLIENT_CAPABILITIES_KEY));
            }
            let meta = if meta_is_object { meta } else { Value::from(version.clone()) };
            let mut params = json!({"_meta": meta}).as_object().cloned().unwrap_or_default();
            let methods: Vec<&str> = method_headers.iter().map(String::as_str).collect();
            let request = incoming(header.as_deref(), methods, Vec::new());
            match validate(&request, Some(&json!(9)), "tools/list", &mut params) {
                Ok(accepted) => prop_assert!(STATELESS_VERSIONS.contains(&accepted.as_str())),
                Err(error) => {
                    prop_assert!([-32602, -32020, -32022].contains(&error.code()), "{}", error);
                    prop_assert_eq!(error.request_id(), Some(&json!(9)));
                }
            }
        }
    }
}
