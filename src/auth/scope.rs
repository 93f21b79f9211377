//! OAuth scopes: which a message needs (by the action group of the tool it calls; resources and
//! prompts are reads), and which of them a caller's token lacks. A token without them is
//! answered 403 `insufficient_scope` before the message reaches MCP, policy or Kubernetes.

use serde_json::{Map, Value};

use super::Caller;
use crate::config::ScopeRules;
use crate::tool::ActionGroup;

/// The scopes a caller lacks for a message, and all the scopes it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insufficient {
    pub needed: Vec<String>,
    pub missing: Vec<String>,
}

/// What one request (`method` with `params`, as the MCP layer parsed it) needs of `caller`'s
/// scopes under `rules`. Checked for every request, alone or in a batch, before it is decided.
pub fn check(
    rules: &ScopeRules,
    caller: &Caller,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(), Insufficient> {
    let group = match method {
        "tools/call" => match params
            .get("name")
            .and_then(Value::as_str)
            .and_then(crate::tool::spec)
        {
            Some(spec) => spec.group,
            // An unknown tool is refused by the MCP layer; it runs nothing.
            None => return Ok(()),
        },
        // Completion runs listings as the caller: a read.
        "resources/read" | "prompts/get" | "completion/complete" => ActionGroup::Read,
        _ => return Ok(()),
    };
    let needed = match group {
        ActionGroup::Read => &rules.read,
        ActionGroup::Write => &rules.write,
        ActionGroup::Destructive => &rules.destructive,
    };
    let missing: Vec<String> = needed
        .iter()
        .filter(|s| !caller.scopes.contains(s))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Insufficient {
            needed: needed.clone(),
            missing,
        })
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

    fn call(tool: &str) -> Map<String, Value> {
        let mut params = Map::new();
        params.insert("name".into(), Value::from(tool));
        params
    }

    #[test]
    fn each_group_needs_its_scopes() {
        let reader = caller(&["kubegate:read"]);
        assert_eq!(
            check(&rules(), &reader, "tools/call", &call("list-resources")),
            Ok(())
        );
        assert_eq!(
            check(&rules(), &reader, "tools/call", &call("kubectl_scale")),
            Err(Insufficient {
                needed: vec!["kubegate:write".into()],
                missing: vec!["kubegate:write".into()],
            })
        );
        let writer = caller(&["kubegate:read", "kubegate:write"]);
        assert_eq!(
            check(&rules(), &writer, "tools/call", &call("delete_pod")),
            Err(Insufficient {
                needed: vec!["kubegate:write".into(), "kubegate:delete".into()],
                missing: vec!["kubegate:delete".into()],
            })
        );
        let nobody = caller(&[]);
        for reading in ["resources/read", "prompts/get", "completion/complete"] {
            assert!(
                check(&rules(), &nobody, reading, &Map::new()).is_err(),
                "{reading}"
            );
        }
    }

    #[test]
    fn listing_and_unknown_tools_need_nothing_here() {
        let nobody = caller(&[]);
        assert_eq!(check(&rules(), &nobody, "tools/list", &Map::new()), Ok(()));
        assert_eq!(check(&rules(), &nobody, "initialize", &Map::new()), Ok(()));
        assert_eq!(
            check(&rules(), &nobody, "tools/call", &call("no-such-tool")),
            Ok(())
        );
        assert_eq!(
            check(
                &ScopeRules::default(),
                &nobody,
                "tools/call",
                &call("delete_pod")
            ),
            Ok(()),
            "no rules, no scopes needed"
        );
    }
}
