//! `kubegate policy explain`: decides one hypothetical call (who, what, with which arguments)
//! against a policy set and prints the decision, the deciding policies and their reasons, and
//! what a shadow set would have decided. With `--config`, it uses that configuration's policies
//! and, when the cluster is reachable, its live namespaces and the kinds it serves.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use kubegate::config::{Config, DEFAULT_TENANT_LABEL};
use kubegate::kube::{ApiCatalog, Kube};
use kubegate::policy::cases::{self, Call, Decided, Principal, StaticNamespaces};
use kubegate::policy::{NamespaceDirectory, PolicyEngine, PolicySources, RequestFacts};
use serde_json::{Map, Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// The caller's Kubernetes username.
    #[arg(long = "as")]
    user: String,
    /// A group of the caller; repeat for several.
    #[arg(long = "group")]
    groups: Vec<String>,
    #[arg(long, default_value = "")]
    tenant: String,
    #[arg(long)]
    email: Option<String>,
    /// Another claim of the caller's token, `NAME=VALUE`; repeat for several.
    #[arg(long = "claim")]
    claims: Vec<String>,
    /// The tool called.
    #[arg(long, group = "call")]
    tool: Option<String>,
    /// A resource URI read (`cluster-info`, `k8s://team-a/pods/web`).
    #[arg(long, group = "call")]
    resource: Option<String>,
    /// A prompt got.
    #[arg(long, group = "call")]
    prompt: Option<String>,
    /// `reveal-secrets` in this namespace (or `cluster`).
    #[arg(long, group = "call")]
    reveal: Option<String>,
    /// The tool's or prompt's arguments, as a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
    /// Policy files or directories (instead of `--config`).
    #[arg(long = "policies")]
    policies: Vec<PathBuf>,
    /// A kubegate configuration: its policies, and its cluster's namespaces when reachable.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The cluster the call goes to (the Cedar `Cluster` id; with `--config`, one of its
    /// clusters, whose namespaces are read); without it, `--config`'s default cluster, or `local`.
    #[arg(long)]
    cluster: Option<String>,
    /// A namespace as `NAME` or `NAME:LABEL=VALUE,LABEL=VALUE`, when no cluster is used;
    /// repeat for several.
    #[arg(long = "namespace")]
    namespaces: Vec<String>,
    #[arg(long, default_value = "127.0.0.1")]
    source_ip: IpAddr,
    /// The time of the call (RFC 3339); now if not given.
    #[arg(long)]
    time: Option<jiff::Timestamp>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(explain(args))
}

async fn explain(args: Args) -> anyhow::Result<()> {
    let arguments: Map<String, Value> = match serde_json::from_str(&args.args) {
        Ok(Value::Object(map)) => map,
        _ => bail!("--args must be a JSON object, e.g. '{{\"namespace\": \"team-a\"}}'"),
    };
    let call = match (&args.tool, &args.resource, &args.prompt, &args.reveal) {
        (Some(tool), ..) => Call::Tool {
            tool: tool.clone(),
            arguments,
        },
        (_, Some(uri), ..) => Call::Resource {
            resource: uri.clone(),
        },
        (_, _, Some(prompt), _) => Call::Prompt {
            prompt: prompt.clone(),
            arguments,
        },
        (.., Some(reveal)) => Call::Reveal {
            reveal: reveal.clone(),
        },
        _ => bail!("name the call: --tool, --resource, --prompt or --reveal"),
    };
    let mut claims = BTreeMap::new();
    for claim in &args.claims {
        let (name, value) = claim
            .split_once('=')
            .with_context(|| format!("--claim {claim:?} is not NAME=VALUE"))?;
        claims.insert(name.to_owned(), value.to_owned());
    }
    let caller = Principal {
        user: args.user.clone(),
        groups: args.groups.clone(),
        tenant: args.tenant.clone(),
        email: args.email.clone(),
        claims,
    }
    .caller();
    let facts = RequestFacts {
        transport: "streamable-http",
        source_ip: args.source_ip,
        protocol_version: kubegate::mcp::PROTOCOL_VERSIONS[0].to_owned(),
        session_id: None,
        time: args.time.unwrap_or_else(jiff::Timestamp::now),
    };

    let (engine, live, tenant_label, notes) = setup(&args).await?;
    let (namespaces, served): (Box<dyn NamespaceDirectory>, Arc<ApiCatalog>) = match live {
        Some(kube) => {
            let served = kube.catalog();
            (Box::new(kube), served)
        }
        None => (
            Box::new(StaticNamespaces::new(
                &parse_namespaces(&args.namespaces)?,
                &tenant_label,
            )),
            Arc::new(ApiCatalog::offline()),
        ),
    };
    let decided = cases::decide(
        &engine,
        &caller,
        &call,
        &facts,
        &*namespaces,
        &served,
        false,
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&as_json(&engine, &decided))?
        );
    } else {
        for note in notes {
            eprintln!("note: {note}");
        }
        print_human(&engine, &caller.username, &decided);
    }
    Ok(())
}

/// The engine, the cluster if `--config` names a reachable one, and the tenant label.
async fn setup(args: &Args) -> anyhow::Result<(PolicyEngine, Option<Kube>, String, Vec<String>)> {
    let mut notes = Vec::new();
    let Some(path) = &args.config else {
        if args.policies.is_empty() {
            bail!("name the policies: --config FILE or --policies PATH");
        }
        let sources = PolicySources {
            paths: args.policies.clone(),
            ..PolicySources::default()
        };
        let cluster = args.cluster.as_deref().unwrap_or("local");
        let engine = PolicyEngine::load(sources, cluster)?;
        return Ok((engine, None, DEFAULT_TENANT_LABEL.to_owned(), notes));
    };
    let config = Config::load(path)?;
    let clusters = config.clusters();
    let cluster = match &args.cluster {
        None => &clusters[0],
        Some(name) => clusters.iter().find(|c| &c.name == name).with_context(|| {
            let known: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
            format!(
                "--cluster {name}: {} fronts {}",
                path.display(),
                known.join(", ")
            )
        })?,
    };
    let engine = PolicyEngine::load(config.policy_sources(), &cluster.name)?;
    let connect = Kube::connect(cluster, &config.kubernetes);
    let kube = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(kube)) => Some(kube),
        Ok(Err(error)) => {
            notes.push(format!(
                "the cluster is not reachable ({error}); deciding with the namespaces given by \
                 --namespace and the built-in kinds"
            ));
            None
        }
        Err(_) => {
            notes.push("the cluster did not answer within 10 s; deciding without it".into());
            None
        }
    };
    Ok((engine, kube, cluster.tenant_label.clone(), notes))
}

fn parse_namespaces(
    given: &[String],
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut namespaces = BTreeMap::new();
    for spec in given {
        let (name, labels) = spec.split_once(':').unwrap_or((spec, ""));
        let mut parsed = BTreeMap::new();
        for label in labels.split(',').filter(|l| !l.is_empty()) {
            let (key, value) = label
                .split_once('=')
                .with_context(|| format!("--namespace {spec:?}: {label:?} is not LABEL=VALUE"))?;
            parsed.insert(key.to_owned(), value.to_owned());
        }
        namespaces.insert(name.to_owned(), parsed);
    }
    Ok(namespaces)
}

fn print_human(engine: &PolicyEngine, user: &str, decided: &Decided) {
    println!(
        "policy set {} ({} policies)",
        engine.version(),
        engine.len()
    );
    let verdict = if decided.allowed { "ALLOW" } else { "DENY" };
    println!("decision for {user}: {verdict}");
    if decided.allowed {
        for (resource, policies) in &decided.resources {
            println!("  on {resource}: permitted by {}", policies.join(", "));
        }
    } else {
        println!("  {}", decided.message);
    }
    for reason in &decided.reasons {
        println!("  reason: {reason}");
    }
    if let Some(shadow) = &decided.shadow {
        let verdict = if shadow.allowed { "ALLOW" } else { "DENY" };
        let agrees = if shadow.allowed == decided.allowed {
            "agrees"
        } else {
            "DIFFERS"
        };
        println!(
            "shadow set: {verdict} ({agrees}), deciding policies: {}",
            if shadow.policies.is_empty() {
                "none".to_owned()
            } else {
                shadow.policies.join(", ")
            }
        );
    }
}

fn as_json(engine: &PolicyEngine, decided: &Decided) -> Value {
    json!({
        "policyVersion": engine.version(),
        "allowed": decided.allowed,
        "policies": decided.policies,
        "reasons": decided.reasons,
        "resources": decided.resources.iter().map(|(r, p)| json!({"resource": r, "policies": p})).collect::<Vec<_>>(),
        "message": decided.message,
        "shadow": decided.shadow.as_ref().map(|s| json!({
            "allowed": s.allowed, "policies": s.policies, "reasons": s.reasons, "errors": s.errors,
        })),
    })
}
