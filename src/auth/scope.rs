//! OAuth scopes: which a message needs (by the action group of the tool it calls; resources and
//! prompts are reads), and which of them a caller's token lacks. A token without them is
//! answered 403 `insufficient_scope` before the message reaches MCP, policy or Kubernetes.

use serde_json::Value;

use super::Caller;
use crate::config::ScopeRules;
use crate::tool::ActionGroup;

/// The scopes a caller lacks for a message, and all the scopes it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insufficient {
    pub needed: Vec<String>,
    pub missing: Vec<String>,
}

/// What `body` (one JSON-RPC message or a batch) needs of `caller`'s scopes under `rules`.
/// A body that does not parse needs nothing here: the MCP layer refuses it with its own error.
/// The message is read as the MCP layer reads it (a `Value`, the last of repeated keys winning),
/// so both see the same tool.
pub fn check(rules: &ScopeRules, caller: &Caller, body: &[u8]) -> Result<(), Insufficient> {
    if rules.read.is_empty() && rules.write.is_empty() && rules.destructive.is_empty() {
        return Ok(());
    }
    let messages = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(batch)) => batch,
        Ok(one) => vec![one],
        Err(_) => Vec::new(),
    };
    let mut needed: Vec<String> = Vec::new();
    for message in &messages {
        let group = match message["method"].as_str() {
            Some("tools/call") => message["params"]["name"]
                .as_str()
                .and_then(crate::tool::spec)
                .map(|spec| spec.group),
            Some("resources/read" | "prompts/get") => Some(ActionGroup::Read),
            _ => None,
        };
        let scopes = match group {
            Some(ActionGroup::Read) => &rules.read,
            Some(ActionGroup::Write) => &rules.write,
            Some(ActionGroup::Destructive) => &rules.destructive,
            None => continue,
        };
        for scope in scopes {
            if !needed.contains(scope) {
                needed.push(scope.clone());
            }
        }
    }
    let missing: Vec<String> = needed
        .iter()
        .filter(|s| !caller.scopes.contains(s))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Insufficient { needed, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScopeRules {
        ScopeRules {
            read: vec!["kubegate:read".into()],
            write: vec!["kubegate:write".into()],
            destructive: vec!["kubegate:write".into(), "kubegate:delete".into()],
        }
    }

    fn caller(scopes: &[&str]) -> Caller {
        Caller {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Caller::default()
        }
    }

    fn call(tool: &str) -> Vec<u8> {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn each_group_needs_its_scopes() {
        let reader = caller(&["kubegate:read"]);
        assert_eq!(check(&rules(), &reader, &call("list-resources")), Ok(()));
        assert_eq!(
            check(&rules(), &reader, &call("kubectl_scale")),
            Err(Insufficient {
                needed: vec!["kubegate:write".into()],
                missing: vec!["kubegate:write".into()],
            })
        );
        let writer = caller(&["kubegate:read", "kubegate:write"]);
        assert_eq!(
            check(&rules(), &writer, &call("delete_pod")),
            Err(Insufficient {
                needed: vec!["kubegate:write".into(), "kubegate:delete".into()],
                missing: vec!["kubegate:delete".into()],
            })
        );
        let resource =
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"x"}}"#;
        assert!(check(&rules(), &caller(&[]), resource).is_err());
    }

    #[test]
    fn listing_and_unparsable_bodies_need_nothing_here() {
        let nobody = caller(&[]);
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(check(&rules(), &nobody, list), Ok(()));
        assert_eq!(check(&rules(), &nobody, b"{not json"), Ok(()));
        assert_eq!(check(&rules(), &nobody, &call("no-such-tool")), Ok(()));
        assert_eq!(
            check(&ScopeRules::default(), &nobody, &call("delete_pod")),
            Ok(()),
            "no rules, no scopes needed"
        );
    }

    #[test]
    fn a_batch_needs_the_scopes_of_every_message() {
        let batch = format!(
            "[{}, {}]",
            String::from_utf8(call("list-resources")).unwrap_or_default(),
            String::from_utf8(call("kubectl_apply")).unwrap_or_default()
        );
        let reader = caller(&["kubegate:read"]);
        let refused = check(&rules(), &reader, batch.as_bytes());
        assert_eq!(
            refused.map_err(|i| i.missing),
            Err(vec!["kubegate:write".to_owned()])
        );
    }
}
