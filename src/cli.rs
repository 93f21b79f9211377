//! Parses the command line and runs one subcommand, printing any error with its causes.

mod audit;
#[cfg(feature = "dev")]
mod dev_certs;
mod policy;
mod serve;
mod stdio;
#[cfg(feature = "dev")]
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kubegate: a policy-gated, multi-tenant MCP gateway for Kubernetes.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over HTTPS at https://ADDR:PORT/mcp (with --mcp: over stdio).
    Serve(serve::Args),
    /// Serve MCP over stdin and stdout, for a local client, as the configured caller.
    Stdio(stdio::Args),
    /// Mint a dev JWT signed with the local dev issuer key (demo and tests only).
    #[cfg(feature = "dev")]
    Token(token::Args),
    /// Make a dev CA, a server certificate and a dev JWT issuer key (demo and tests only).
    #[cfg(feature = "dev")]
    DevCerts(dev_certs::Args),
    /// Validate, test and explain Cedar policies; print the schema they are written against.
    Policy(policy::Args),
    /// Review kubegate's audit log: query, stats, join.
    Audit(audit::Args),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBEGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    kubegate::install_crypto_provider();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Stdio(args) => stdio::run(args),
        #[cfg(feature = "dev")]
        Command::Token(args) => token::run(args),
        #[cfg(feature = "dev")]
        Command::DevCerts(args) => dev_certs::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Audit(args) => audit::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kubegate: {error:#}");
            ExitCode::FAILURE
        }
    }
}
