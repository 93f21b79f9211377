//! Generates kubegate's Cedar schema from the tool catalog, so that the schema policies are
//! validated against always names exactly the tools (actions) and arguments that exist: each
//! tool's `arguments` record is made from the same argument struct as its MCP `inputSchema`.
//!
//! `policies/kubegate.cedarschema` is this output, committed for policy authors and their tools;
//! a test keeps the file equal to what the code generates (`kubegate policy schema --write` rewrites it).

use std::fmt::Write;

use cedar_policy::Schema;

use serde_json::Value;

use crate::policy::ResourceType;
use crate::tool::prompts::PromptArguments;
use crate::tool::resources::ResourceArguments;
use crate::tool::{self, CATALOG, ToolSpec, args};

/// Entity types, the common `Request` record and the actions that are not tools: the part of
/// the schema tools do not change.
const PREAMBLE: &str = r#"// kubegate's Cedar schema, generated from its tool catalog by `kubegate policy schema`.
// Do not edit by hand: change the catalog (src/tool/) and run `kubegate policy schema --write`.

// A tenant: the parent of its users and of the namespaces labelled with it.
entity Tenant;
// A Kubernetes group of the caller, as impersonated.
entity Group;
// The caller: id = Kubernetes username; every other JWT claim (but exp, iat, nbf, jti) is a tag.
entity User in [Group, Tenant] = {
  "tenant": String,
  "email"?: String,
} tags String;
// A cluster kubegate fronts: id = its configured name. The target of cluster-scoped and
// all-namespace calls.
entity Cluster = {
  "name": String,
};
// A namespace: id = "<cluster>/<name>"; its labels are its tags; `tenant` is its tenant label's
// value (then the Tenant is a parent too).
entity Namespace in [Cluster, Tenant] = {
  "name": String,
  "cluster": String,
  "tenant"?: String,
} tags String;
// A Kubernetes object: id = "<cluster>/<namespace>/<Kind>/<name>" ("<cluster>/<Kind>/<name>"
// for cluster-scoped kinds); in its Namespace (or, cluster-scoped, its Cluster).
entity Object in [Namespace, Cluster] = {
  "kind": String,
  "apiGroup": String,
  "name": String,
  "namespace"?: String,
  "cluster": String,
  "tenant"?: String,
};

// Facts about the transport of each call.
type Request = {
  "transport": String,
  "sourceIp": ipaddr,
  "protocolVersion": String,
  "sessionId"?: String,
  "time": datetime,
};

// Every tool's action is in exactly one of these groups.
action "read", "write", "destructive";

// Granted separately, never through a group: show Secret values instead of masking them.
action "reveal-secrets" appliesTo {
  principal: [User],
  resource: [Cluster, Namespace],
  context: { "request": Request },
};

"#;

/// The actions that are not tools, and the resource types they apply to (as the preamble
/// declares them).
const OTHER_ACTIONS: &[(&str, &[ResourceType])] = &[
    (
        READ_RESOURCE,
        &[
            ResourceType::Cluster,
            ResourceType::Namespace,
            ResourceType::Object,
        ],
    ),
    (
        GET_PROMPT,
        &[ResourceType::Cluster, ResourceType::Namespace],
    ),
];

/// The Cedar action of reading an MCP resource.
pub const READ_RESOURCE: &str = "read-resource";
/// The Cedar action of getting an MCP prompt.
pub const GET_PROMPT: &str = "get-prompt";

/// Every action a call is decided as (each tool's, `read-resource`, `get-prompt`), with the
/// resource types it applies to.
pub fn decided_actions() -> Vec<(&'static str, &'static [ResourceType])> {
    CATALOG
        .iter()
        .map(|spec| (spec.name, spec.resources))
        .chain(OTHER_ACTIONS.iter().copied())
        .collect()
}

/// The schema, in Cedar's schema syntax.
pub fn render() -> String {
    let mut out = String::from(PREAMBLE);
    let resource_arguments = args::input_schema::<ResourceArguments>();
    let prompt_arguments = args::input_schema::<PromptArguments>();
    out.push_str(
        "// Reading an MCP resource (`cluster-info`, `namespaces`, `active-filters`, `k8s://...`).\n",
    );
    render_action(
        &mut out,
        READ_RESOURCE,
        "read",
        OTHER_ACTIONS[0].1,
        Ok(&resource_arguments),
    );
    out.push_str(
        "\n// Getting an MCP prompt (`troubleshoot-pod`, `troubleshoot-deployment`, \
         `troubleshoot-cluster`).\n",
    );
    render_action(
        &mut out,
        GET_PROMPT,
        "read",
        OTHER_ACTIONS[1].1,
        Ok(&prompt_arguments),
    );
    out.push_str("\n// One action per tool, named as the tool.\n");
    for spec in CATALOG {
        render_tool(&mut out, spec);
    }
    out
}

fn render_tool(out: &mut String, spec: &ToolSpec) {
    let schema =
        tool::input_schema(spec.name).ok_or_else(|| format!("no input schema for {}", spec.name));
    render_action(out, spec.name, spec.group.action(), spec.resources, schema);
}

fn render_action(
    out: &mut String,
    name: &str,
    group: &str,
    resources: &[ResourceType],
    arguments: Result<&Value, String>,
) {
    let resources: Vec<&str> = resources.iter().map(|r| r.cedar_name()).collect();
    let arguments = arguments
        .and_then(|schema| args::cedar_record(schema, 2))
        .unwrap_or_else(|e| format!("{{}} // kubegate bug: {e}"));
    // Writing to a String cannot fail.
    let _ = writeln!(out, "action \"{name}\" in [\"{group}\"] appliesTo {{");
    let _ = writeln!(out, "  principal: [User],");
    let _ = writeln!(out, "  resource: [{}],", resources.join(", "));
    let _ = writeln!(out, "  context: {{");
    let _ = writeln!(out, "    \"arguments\": {arguments},");
    let _ = writeln!(out, "    \"request\": Request,");
    let _ = writeln!(out, "  }},");
    let _ = writeln!(out, "}};");
}

/// The parsed schema.
pub fn schema() -> Result<Schema, String> {
    Schema::from_cedarschema_str(&render())
        .map(|(schema, _warnings)| schema)
        .map_err(|e| format!("{e:?}"))
}
