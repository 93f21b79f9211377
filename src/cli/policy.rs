//! `kubegate policy`: validate policy files, run policy test cases, explain one decision, and
//! print the schema policies are written against.

mod explain;

use std::path::PathBuf;

use anyhow::{Context, bail};
use kubegate::config::Config;
use kubegate::policy::{PolicyEngine, PolicyError, PolicySources, cases};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Validate policy files or directories against kubegate's schema (strict mode).
    Validate(ValidateArgs),
    /// Run policy test cases (YAML or JSON files, or folders of them).
    Test(TestArgs),
    /// Decide one hypothetical call and say why.
    Explain(Box<explain::Args>),
    /// Print (or write) the Cedar schema generated from the tool catalog.
    Schema(SchemaArgs),
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// Policy files or directories; with `--config`, the configuration's policies.
    paths: Vec<PathBuf>,
    /// Validate the policies (and links, and shadow set) a configuration file names.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TestArgs {
    /// Case files or folders of them.
    #[arg(default_value = "policies/tests")]
    paths: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct SchemaArgs {
    /// Write the schema to this file instead of printing it.
    #[arg(long)]
    write: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Validate(args) => validate(args),
        Command::Test(args) => test(args),
        Command::Explain(args) => explain::run(*args),
        Command::Schema(args) => schema(args),
    }
}

fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let sources = match &args.config {
        Some(config) => Config::load(config)?.policy_sources(),
        None if args.paths.is_empty() => bail!("name policy files or directories, or --config"),
        None => PolicySources {
            paths: args.paths.clone(),
            ..PolicySources::default()
        },
    };
    match PolicyEngine::load(sources, "validate") {
        Ok(engine) => {
            for note in engine.notes() {
                eprintln!("note: {note}");
            }
            let shadow = if engine.has_shadow() {
                " (and a shadow set)"
            } else {
                ""
            };
            println!(
                "ok: {} policies validate against kubegate's schema{shadow}; version {}",
                engine.len(),
                engine.version()
            );
            Ok(())
        }
        Err(PolicyError::Parse(problems) | PolicyError::Validation(problems)) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            bail!("{} problem(s) in the policies", problems.len())
        }
        Err(error) => Err(error.into()),
    }
}

fn test(args: TestArgs) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            files.extend(cases::files_in(path)?);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no case files found");
    }
    let (mut total, mut failed) = (0, 0);
    for file in &files {
        let outcomes = cases::run(file).with_context(|| format!("running {}", file.display()))?;
        for outcome in outcomes {
            total += 1;
            match outcome.failure {
                None => println!("ok   {}: {}", file.display(), outcome.name),
                Some(failure) => {
                    failed += 1;
                    println!("FAIL {}: {}: {failure}", file.display(), outcome.name);
                }
            }
        }
    }
    println!("{total} case(s), {failed} failed");
    if failed > 0 {
        bail!("{failed} policy test case(s) failed");
    }
    Ok(())
}

fn schema(args: SchemaArgs) -> anyhow::Result<()> {
    let schema = kubegate::policy::schema::render();
    match args.write {
        Some(path) => std::fs::write(&path, schema)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{schema}"),
    }
    Ok(())
}
