//! `kubegate serve`: loads the configuration, starts every part, and serves MCP over HTTPS until
//! SIGINT or SIGTERM, then lets open requests finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kubegate::config::Config;
use kubegate::gateway::Gateway;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML).
    #[arg(long, env = "KUBEGATE_CONFIG")]
    config: PathBuf,
    /// Where to listen, overriding the configuration's `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve MCP over stdio instead (k8sgpt's `serve --mcp`): the same as `kubegate stdio`.
    #[arg(long)]
    mcp: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if args.mcp {
        return runtime.block_on(super::stdio::serve(args.config));
    }
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let Some(tls) = &config.tls else {
        anyhow::bail!("serving over HTTPS needs a [tls] section (a certificate and key)");
    };
    if config.auth.is_none() {
        anyhow::bail!("serving over HTTPS needs an [auth] section: every caller presents a token");
    }
    let tls = kubegate::tls::server_config(&tls.cert, &tls.key)?;
    let gateway = Arc::new(Gateway::start(&config).await?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!("serving MCP at https://{}/mcp", listener.local_addr()?);
    kubegate::http::serve(gateway, tls, listener, shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
