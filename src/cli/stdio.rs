//! `kubegate stdio`: serves MCP over stdin and stdout for a local client (Claude Desktop and the
//! like), as the caller `[stdio]` names (or the local OS user), until stdin closes.

use std::path::PathBuf;

use anyhow::Context;
use kubegate::config::Config;
use kubegate::gateway::Gateway;
use kubegate::stdio::{self, StdioCaller};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML); [tls] and [auth] are not needed here.
    #[arg(long, env = "KUBEGATE_CONFIG")]
    pub config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args.config))
}

pub async fn serve(config: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&config)?;
    let traces = kubegate::telemetry::start_from_env()?;
    let gateway = Gateway::start(&config).await?;
    let who = StdioCaller::from_config(config.stdio.as_ref());
    tracing::info!(
        user = %who.caller.username,
        source = who.source,
        "serving MCP on stdin and stdout"
    );
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    let served = stdio::serve(&gateway, &who, input, tokio::io::stdout()).await;
    gateway.audit.close().await;
    if let Some(traces) = traces {
        tokio::task::spawn_blocking(move || traces.shutdown()).await?;
    }
    served?;
    Ok(())
}
