//! The MCP tools kubegate serves: a catalog entry each (name, parameters, annotations, Cedar action
//! group and resource types) and a parsed call each, behind the [`ToolCall`] enum.
//!
//! Every call goes through the same steps: [`ToolCall::parse`] its arguments, name its Cedar
//! action and [`Target`], then [`ToolCall::run`] with the [`Permit`] the policy gave for exactly
//! that action and target, which builds the client that impersonates the permitted caller.
//! Adding a tool touches its own file, [`CATALOG`], and one arm in each of `ToolCall`'s matches.

mod arguments;
mod list_resources;

pub use list_resources::{ListResources, items as list_items};

use serde_json::{Map, Value, json};

use crate::audit::KubeCall;
use crate::kube::{Kube, KubeError};
use crate::policy::{Permit, ResourceType, Target};

/// The Cedar action group a tool's action belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionGroup {
    Read,
    Write,
    Destructive,
}

impl ActionGroup {
    /// The group's Cedar action id (`Action::"read"`, ...).
    pub fn action(self) -> &'static str {
        match self {
            ActionGroup::Read => "read",
            ActionGroup::Write => "write",
            ActionGroup::Destructive => "destructive",
        }
    }
}

/// The MCP tool annotations (hints to clients, never a security boundary).
#[derive(Debug, Clone, Copy)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// The type of one tool parameter: its JSON Schema type and its Cedar type follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
}

/// One parameter of a tool.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub description: &'static str,
}

/// A tool as the catalog describes it.
#[derive(Debug)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub group: ActionGroup,
    pub params: &'static [Param],
    /// The Cedar resource types its calls target.
    pub resources: &'static [ResourceType],
    pub annotations: Annotations,
}

impl ToolSpec {
    /// The tool's MCP `inputSchema` (JSON Schema), made from its parameters.
    pub fn input_schema(&self) -> Value {
        let properties: Map<String, Value> = self
            .params
            .iter()
            .map(|p| {
                let ty = match p.ty {
                    ParamType::String => "string",
                };
                (
                    p.name.to_owned(),
                    json!({ "type": ty, "description": p.description }),
                )
            })
            .collect();
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        json!({ "type": "object", "properties": properties, "required": required })
    }

    /// The tool as `tools/list` shows it.
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema(),
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.annotations.read_only,
                "destructiveHint": self.annotations.destructive,
                "idempotentHint": self.annotations.idempotent,
                "openWorldHint": self.annotations.open_world,
            },
        })
    }
}

/// Every tool kubegate serves, in `tools/list` order.
pub static CATALOG: &[&ToolSpec] = &[&list_resources::SPEC];

/// Looks a tool up by its MCP name.
pub fn spec(name: &str) -> Option<&'static ToolSpec> {
    CATALOG.iter().copied().find(|s| s.name == name)
}

/// What a permitted call may additionally see, each granted by its own Cedar action.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grants {
    /// `Action::"reveal-secrets"`: Secret values are shown instead of masked.
    pub reveal_secrets: bool,
}

/// A tool's answer: the text content of an MCP `CallToolResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
}

/// Why a tool call could not be parsed or run.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: &'static str, message: String },
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("a permit for `{permitted}` cannot run `{tool}` (a bug in kubegate; nothing was sent)")]
    PermitMismatch {
        tool: &'static str,
        permitted: String,
    },
}

/// A parsed call of one tool, ready to be authorised and run.
#[derive(Debug, Clone)]
pub enum ToolCall {
    ListResources(ListResources),
}

impl ToolCall {
    /// Parses `tools/call` parameters: the tool's name and its arguments object.
    pub fn parse(name: &str, arguments: &Map<String, Value>) -> Result<ToolCall, ToolError> {
        match name {
            "list-resources" => ListResources::parse(arguments).map(ToolCall::ListResources),
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }

    /// The catalog entry of the called tool.
    pub fn spec(&self) -> &'static ToolSpec {
        match self {
            ToolCall::ListResources(_) => &list_resources::SPEC,
        }
    }

    /// The Cedar resource the call acts on.
    pub fn target(&self) -> Target {
        match self {
            ToolCall::ListResources(call) => call.target(),
        }
    }

    /// The arguments as the Cedar context's `arguments` record: typed and normalised (for
    /// example `resourceType` is always the plural name, whatever alias the caller used).
    pub fn cedar_arguments(&self) -> Value {
        match self {
            ToolCall::ListResources(call) => call.cedar_arguments(),
        }
    }

    /// Whether the call may return Secret values, so that `reveal-secrets` must be decided.
    pub fn touches_secrets(&self) -> bool {
        match self {
            ToolCall::ListResources(call) => call.touches_secrets(),
        }
    }

    /// Runs the call against Kubernetes as the caller its permit names, noting each API request
    /// in `calls`. The permit must be for exactly this call's action and target.
    pub async fn run(
        &self,
        permit: &Permit,
        kube: &Kube,
        calls: &mut Vec<KubeCall>,
        grants: Grants,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self.spec().name;
        if !permit.covers(tool, &self.target()) {
            return Err(ToolError::PermitMismatch {
                tool,
                permitted: format!("{} on {}", permit.action(), permit.resource()),
            });
        }
        let mut kube = kube.impersonate(permit, calls)?;
        match self {
            ToolCall::ListResources(call) => call.run(&mut kube, grants).await,
        }
    }
}
