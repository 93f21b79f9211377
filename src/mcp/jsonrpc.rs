//! Reads JSON-RPC 2.0 messages and writes their responses, as MCP carries them.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// JSON-RPC error codes kubegate answers with.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Not a JSON-RPC code: the MCP-over-HTTP convention for a missing or rejected token.
    pub const UNAUTHENTICATED: i64 = -32001;
    /// MCP's code for a resource that does not exist.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// kubegate's code (in JSON-RPC's server range) for a request the policy refused.
    pub const REFUSED: i64 = -32003;
    /// MCP 2026-07-28: a header disagrees with the body (or is missing).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// MCP 2026-07-28: the protocol version is not one the server speaks.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// One message received from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: it has an id and expects a response.
    Request {
        id: Value,
        method: String,
        params: Option<Map<String, Value>>,
    },
    /// A notification: no id, no response.
    Notification {
        method: String,
        params: Option<Map<String, Value>>,
    },
    /// A response to something the server asked (`sampling/createMessage`): its id, and its
    /// `result` (`Ok`) or `error` (`Err`).
    Response {
        id: Value,
        outcome: Result<Value, Value>,
    },
}

/// Why a message is not a JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is not JSON: {0}")]
    Parse(String),
    #[error("JSON-RPC batches are only part of MCP 2025-03-26; send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
}

impl EnvelopeError {
    pub fn code(&self) -> i64 {
        match self {
            EnvelopeError::Parse(_) => code::PARSE_ERROR,
            EnvelopeError::Batch | EnvelopeError::Invalid(_) => code::INVALID_REQUEST,
        }
    }
}

/// Parses one message from a request body.
pub fn parse(body: &[u8]) -> Result<Message, EnvelopeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| EnvelopeError::Parse(e.to_string()))?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(EnvelopeError::Batch),
        _ => return Err(EnvelopeError::Invalid("the message must be a JSON object")),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(EnvelopeError::Invalid("`jsonrpc` must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(EnvelopeError::Invalid("`method` must be a string")),
        None if object.contains_key("result") || object.contains_key("error") => {
            let id = object.remove("id").unwrap_or(Value::Null);
            let outcome = match object.remove("result") {
                Some(result) => Ok(result),
                None => Err(object.remove("error").unwrap_or(Value::Null)),
            };
            return Ok(Message::Response { id, outcome });
        }
        None => return Err(EnvelopeError::Invalid("`method` is missing")),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => return Err(EnvelopeError::Invalid("`params` must be an object")),
    };
    match object.remove("id") {
        None => Ok(Message::Notification { method, params }),
        Some(id @ (Value::String(_) | Value::Number(_))) => {
            Ok(Message::Request { id, method, params })
        }
        Some(_) => Err(EnvelopeError::Invalid("`id` must be a string or a number")),
    }
}

/// An encoded response.
pub type Response = Box<RawValue>;

/// A successful response.
pub fn result(id: &Value, result: impl Serialize) -> Response {
    #[derive(Serialize)]
    struct Success<'a, T> {
        jsonrpc: &'static str,
        id: &'a Value,
        result: T,
    }
    encode(&Success {
        jsonrpc: "2.0",
        id,
        result,
    })
}

/// An error response (`id` is null when the request's id could not be read).
pub fn error(id: Option<&Value>, code: i64, message: impl Into<String>) -> Response {
    encode(&json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": { "code": code, "message": message.into() },
    }))
}

/// An error response with `data`.
pub fn error_with_data(
    id: Option<&Value>,
    code: i64,
    message: impl Into<String>,
    data: Option<Value>,
) -> Response {
    let mut error = json!({ "code": code, "message": message.into() });
    if let Some(data) = data {
        error["data"] = data;
    }
    encode(&json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": error,
    }))
}

fn encode(response: &impl Serialize) -> Response {
    serde_json::value::to_raw_value(response).unwrap_or_else(|error| {
        // Only a map with non-string keys fails to encode, and kubegate makes none.
        tracing::error!(%error, "a response could not be encoded");
        serde_json::value::to_raw_value(&json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": code::INTERNAL_ERROR, "message": "kubegate could not encode its answer"}}))
        .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
        assert_eq!(
            request,
            Ok(Message::Request {
                id: json!(7),
                method: "tools/list".into(),
                params: None
            })
        );
        let note = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(
            note,
            Ok(Message::Notification {
                method: "notifications/initialized".into(),
                params: None
            })
        );
        let response = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        assert_eq!(
            response,
            Ok(Message::Response {
                id: Value::from("a"),
                outcome: Ok(serde_json::json!({}))
            })
        );
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        assert!(matches!(parse(b"{not json"), Err(EnvelopeError::Parse(_))));
        assert_eq!(parse(b"[]"), Err(EnvelopeError::Batch));
        assert_eq!(
            parse(b"42"),
            Err(EnvelopeError::Invalid("the message must be a JSON object"))
        );
        assert_eq!(
            parse(br#"{"id":1,"method":"ping"}"#),
            Err(EnvelopeError::Invalid("`jsonrpc` must be \"2.0\""))
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#),
            Err(EnvelopeError::Invalid("`id` must be a string or a number"))
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            Err(EnvelopeError::Invalid("`params` must be an object"))
        );
        assert_eq!(
            parse(b"[]").map_err(|e| e.code()),
            Err(code::INVALID_REQUEST)
        );
        assert_eq!(parse(b"{").map_err(|e| e.code()), Err(code::PARSE_ERROR));
    }
}

#[cfg(test)]
mod hostile {
    //! Whatever arrives as a body, the envelope parser answers with a message or an error that
    //! has a code, never a panic; and well-formed requests keep their id, method and params.

    use super::*;
    use proptest::prelude::*;

    fn json_value(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,7}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_with_a_code(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Err(error) = parse(&bytes) {
                prop_assert!([code::PARSE_ERROR, code::INVALID_REQUEST].contains(&error.code()));
            }
        }

        #[test]
        fn any_json_parses_or_fails_with_a_code(value in json_value(3)) {
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            if let Err(error) = parse(&bytes) {
                prop_assert!([code::PARSE_ERROR, code::INVALID_REQUEST].contains(&error.code()));
            }
        }

        #[test]
        fn well_formed_requests_keep_what_they_carry(
            id in prop_oneof![any::<i64>().prop_map(Value::from), "[a-z0-9-]{1,12}".prop_map(Value::from)],
            method in "[a-z/]{1,20}",
            params in prop::collection::btree_map("[a-z]{1,6}", json_value(2), 0..4),
        ) {
            let params: Map<String, Value> = params.into_iter().collect();
            let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                .to_string();
            // serde_json prints floats shortest-first and may read the last digit back
            // differently, so the expectation is the params as serde_json reads them.
            let sent: Value = serde_json::from_str(&body).expect("json! output parses");
            let params = sent["params"].as_object().cloned();
            let parsed = parse(body.as_bytes());
            prop_assert_eq!(parsed, Ok(Message::Request { id, method, params }));
        }
    }
}
