//! Generates kubegate's Cedar schema from the tool catalog, so that the schema policies are
//! validated against always names exactly the tools (actions) and arguments that exist.
//!
//! `policies/kubegate.cedarschema` is this output, committed for policy authors and their tools;
//! a test keeps the file equal to what the code generates (`kubegate schema` rewrites it).

use std::fmt::Write;

use cedar_policy::Schema;

use crate::tool::{CATALOG, ParamType, ToolSpec};

/// Entity types and the common `Request` record: the part of the schema tools do not change.
const PREAMBLE: &str = r#"// kubegate's Cedar schema, generated from its tool catalog by `kubegate schema`.
// Do not edit by hand: change the catalog (src/tool/) and run `kubegate schema`.

// A tenant: the parent of its users and of the namespaces labelled with it.
entity Tenant;
// A Kubernetes group of the caller, as impersonated.
entity Group;
// The caller: id = Kubernetes username; every other JWT claim is a tag.
entity User in [Group, Tenant] = {
  "tenant": String,
  "email"?: String,
} tags String;
// The cluster: the target of cluster-scoped and all-namespace calls.
entity Cluster;
// A namespace: its labels are its tags; `tenant` is its tenant label's value.
entity Namespace in [Cluster, Tenant] = {
  "tenant"?: String,
} tags String;

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

/// The schema, in Cedar's schema syntax.
pub fn render() -> String {
    let mut out = String::from(PREAMBLE);
    out.push_str("\n// One action per tool, named as the tool.\n");
    for spec in CATALOG {
        render_action(&mut out, spec);
    }
    out
}

fn render_action(out: &mut String, spec: &ToolSpec) {
    let resources: Vec<&str> = spec.resources.iter().map(|r| r.cedar_name()).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "action \"{}\" in [\"{}\"] appliesTo {{",
        spec.name,
        spec.group.action()
    );
    let _ = writeln!(out, "  principal: [User],");
    let _ = writeln!(out, "  resource: [{}],", resources.join(", "));
    let _ = writeln!(out, "  context: {{");
    let _ = writeln!(out, "    \"arguments\": {{");
    for param in spec.params {
        let ty = match param.ty {
            ParamType::String => "String",
        };
        let optional = if param.required { "" } else { "?" };
        let _ = writeln!(out, "      \"{}\"{optional}: {ty},", param.name);
    }
    let _ = writeln!(out, "    }},");
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
