//! `kubegate audit`: review kubegate's audit log. `query` prints the records that pass the
//! filters, `stats` counts calls and refusals, `join` pairs kubegate's API requests with the
//! API server's own audit events. The logic is [`kubegate::audit::review`].

mod seal;

use std::path::PathBuf;

use kubegate::audit::review::{
    self, ActionGroup, ApiServerEvents, Filter, Join, REQUEST_RECEIVED, RESPONSE_COMPLETE, Reading,
    Skipped, Source, Stats, Table, Window,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the records that pass the filters, merged in time order.
    Query(QueryArgs),
    /// Count calls and denials per user, tenant and tool, and the callers refused most.
    Stats(StatsArgs),
    /// Pair kubegate's API requests with the API server's audit events, and show what is on
    /// one side only.
    Join(JoinArgs),
    /// Check the hash chain and signed checkpoints across rotated and per-replica files;
    /// report the first broken line of each chain and why.
    Verify(seal::VerifyArgs),
    /// Make an Ed25519 key pair to sign the log's checkpoints (`audit.signing_key`).
    Keygen(seal::KeygenArgs),
}

#[derive(clap::Args)]
struct QueryArgs {
    /// kubegate audit logs (rotated, or one per replica); none or `-`: standard input.
    files: Vec<PathBuf>,
    #[command(flatten)]
    filters: Filters,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(clap::Args)]
struct StatsArgs {
    /// kubegate audit logs (rotated, or one per replica); none or `-`: standard input.
    files: Vec<PathBuf>,
    #[command(flatten)]
    filters: Filters,
    /// How many of the most refused callers to show.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(clap::Args)]
struct JoinArgs {
    /// kubegate audit logs (rotated, or one per replica); none or `-`: standard input.
    files: Vec<PathBuf>,
    /// The API server's audit log (JSON lines of audit.k8s.io/v1 Event); repeat for several.
    /// With several clusters, `CLUSTER=PATH`, one or more per cluster: a call is paired only
    /// with an event of its own cluster's log.
    #[arg(long = "kube-audit", required = true)]
    kube_audit: Vec<String>,
    /// The username kubegate authenticates to the API server as: its events that no record
    /// explains are reported.
    #[arg(long)]
    gateway_user: String,
    /// Only from this time: RFC 3339, or a duration back from now (`1h`, `30m`, `2d`).
    /// Without --since and --until, the period kubegate's records cover.
    #[arg(long)]
    since: Option<String>,
    /// Only before this time: RFC 3339, or a duration back from now.
    #[arg(long)]
    until: Option<String>,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// Which records to keep; every filter given must hold.
#[derive(clap::Args)]
struct Filters {
    /// Only calls of this user (the Kubernetes username kubegate impersonated).
    #[arg(long)]
    user: Option<String>,
    /// Only calls of callers in this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only calls of this tool (its MCP name, e.g. `get-resource`).
    #[arg(long)]
    tool: Option<String>,
    /// Only calls whose action is in this group of kubegate's Cedar schema (`read`, `write`,
    /// `destructive`).
    #[arg(long)]
    group: Option<String>,
    /// Only calls the policy allowed, or only those it denied.
    #[arg(long, value_enum)]
    decision: Option<Decision>,
    /// Only calls in this namespace: decided on it or on an object in it, naming it in
    /// their arguments, or sending an API request to it.
    #[arg(long)]
    namespace: Option<String>,
    /// Only calls that went to this cluster (its configured name).
    #[arg(long)]
    cluster: Option<String>,
    /// Only from this time: RFC 3339, or a duration back from now (`1h`, `30m`, `2d`).
    #[arg(long)]
    since: Option<String>,
    /// Only before this time: RFC 3339, or a duration back from now.
    #[arg(long)]
    until: Option<String>,
    /// Only calls that ended so: success, denied, unauthenticated, throttled, cancelled,
    /// invalid, error.
    #[arg(long)]
    outcome: Option<String>,
    /// Which stage's records to read: a changing call also has a `RequestReceived` record.
    #[arg(long, value_enum, default_value_t = Stage::ResponseComplete)]
    stage: Stage,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Decision {
    Allowed,
    Denied,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Stage {
    #[value(name = "ResponseComplete")]
    ResponseComplete,
    #[value(name = "RequestReceived")]
    RequestReceived,
    /// Every stage.
    Any,
}

/// How to print the answer.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// Aligned columns for people.
    Table,
    /// JSON: for `query`, the records' lines exactly as written.
    Json,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Query(args) => query(args),
        Command::Stats(args) => stats(args),
        Command::Join(args) => join(args),
        Command::Verify(args) => seal::verify(args),
        Command::Keygen(args) => seal::keygen(args),
    }
}

fn query(args: QueryArgs) -> anyhow::Result<()> {
    let reading = read(&args.files, &args.filters.resolve()?)?;
    match args.output {
        Output::Json => {
            for entry in &reading.entries {
                println!("{}", entry.line);
            }
        }
        Output::Table => print!("{}", review::query_table(&reading.entries)),
    }
    Ok(())
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let reading = read(&args.files, &args.filters.resolve()?)?;
    let stats = Stats::of(&reading.entries, args.top);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&stats)?),
        Output::Table => {
            println!("{}", stats.summary());
            for (title, table) in stats.tables() {
                print_section(title, &table);
            }
        }
    }
    Ok(())
}

fn join(args: JoinArgs) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let filter = Filter {
        since: args
            .since
            .as_deref()
            .map(|t| review::time_bound(t, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| review::time_bound(t, now))
            .transpose()?,
        ..Filter::default()
    };
    let reading = read(&args.files, &filter)?;
    let mut skipped = Vec::new();
    let logs: Vec<(Option<String>, Source)> = args
        .kube_audit
        .iter()
        .map(|given| {
            // A file of that very name is a path, `=` and all.
            let (cluster, path) = if std::path::Path::new(given).exists() {
                (None, given.as_str())
            } else {
                review::join::cluster_log(given)
            };
            (
                cluster.map(str::to_owned),
                Source::all(&[PathBuf::from(path)]).remove(0),
            )
        })
        .collect();
    let events = ApiServerEvents::read(&logs, &reading.entries, &args.gateway_user, &mut skipped);
    report(&skipped);
    let window = match (filter.since, filter.until) {
        (None, None) => Window::covering(&reading.entries),
        (since, until) => Window { since, until },
    };
    let join = Join::of(&reading.entries, &events?, &args.gateway_user, window);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&join)?),
        Output::Table => {
            for (title, table) in join.tables(&args.gateway_user) {
                print_section(&title, &table);
            }
        }
    }
    Ok(())
}

impl Filters {
    /// The filter these options describe, checked: a group or outcome kubegate does not
    /// know, or a time that does not read, is an error rather than an empty answer.
    fn resolve(&self) -> anyhow::Result<Filter> {
        let now = jiff::Timestamp::now();
        let time = |text: &Option<String>| {
            text.as_deref()
                .map(|t| review::time_bound(t, now))
                .transpose()
        };
        Ok(Filter {
            user: self.user.clone(),
            tenant: self.tenant.clone(),
            tool: self.tool.clone(),
            group: self
                .group
                .as_deref()
                .map(ActionGroup::of_schema)
                .transpose()?,
            allowed: self.decision.map(|d| matches!(d, Decision::Allowed)),
            namespace: self.namespace.clone(),
            cluster: self.cluster.clone(),
            since: time(&self.since)?,
            until: time(&self.until)?,
            outcome: self.outcome.as_deref().map(review::outcome).transpose()?,
            stage: match self.stage {
                Stage::ResponseComplete => Some(RESPONSE_COMPLETE.to_owned()),
                Stage::RequestReceived => Some(REQUEST_RECEIVED.to_owned()),
                Stage::Any => None,
            },
        })
    }
}

/// Reads kubegate's logs (standard input if none), reporting the lines skipped on stderr.
fn read(files: &[PathBuf], filter: &Filter) -> anyhow::Result<Reading> {
    let reading = review::read(&Source::all(files), filter)?;
    report(&reading.skipped);
    Ok(reading)
}

fn report(skipped: &[Skipped]) {
    for line in skipped {
        eprintln!("kubegate: skipped {line}");
    }
}

fn print_section(title: &str, table: &Table) {
    println!("\n{title}");
    if !table.is_empty() {
        print!("{table}");
    }
}
