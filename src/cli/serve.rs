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
    if config.tls.is_none() && config.http.plain_listen.is_none() {
        anyhow::bail!(
            "serving needs a [tls] section (a certificate and key), or [http] plain_listen behind \
             a TLS-terminating proxy"
        );
    }
    if config.auth.is_none() {
        anyhow::bail!("serving over HTTPS needs an [auth] section: every caller presents a token");
    }
    let tls = match &config.tls {
        Some(tls) => {
            let cert = Arc::new(kubegate::tls::ServerCert::load(&tls.cert, &tls.key)?);
            let server = kubegate::tls::server_config(tls, Arc::clone(&cert))?;
            Some((cert, server))
        }
        None => None,
    };
    let traces = kubegate::telemetry::start_from_env()?;
    let gateway = Arc::new(Gateway::start(&config).await?);
    let tls = match tls {
        Some((cert, server)) => {
            cert.keep_fresh();
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            tracing::info!("serving MCP at https://{}/mcp", listener.local_addr()?);
            Some((listener, server))
        }
        None => None,
    };
    let plain = match config.http.plain_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            tracing::warn!(
                "serving MCP in PLAIN HTTP at http://{}/mcp: bearer tokens cross this listener \
                 unencrypted; only a TLS-terminating proxy or mesh may reach it",
                listener.local_addr()?
            );
            Some(listener)
        }
        None => None,
    };
    if let Some(metrics) = &config.metrics {
        let scrape = tokio::net::TcpListener::bind(metrics.listen)
            .await
            .with_context(|| format!("cannot listen for metrics on {}", metrics.listen))?;
        tracing::info!("serving metrics at http://{}/metrics", scrape.local_addr()?);
        tokio::spawn(kubegate::metrics::serve(scrape, std::future::pending()));
    }
    tokio::spawn(reopen_audit_on_sighup(Arc::clone(&gateway)));
    let listeners = kubegate::http::Listeners { tls, plain };
    kubegate::http::serve(gateway, listeners, shutdown_signal()).await;
    if let Some(traces) = traces {
        tokio::task::spawn_blocking(move || traces.shutdown()).await?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Reopens the audit log on every SIGHUP (logrotate's `postrotate`), continuing its chain.
async fn reopen_audit_on_sighup(gateway: Arc<Gateway>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGHUP; the audit log is not reopened on it");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        if let Err(error) = gateway.audit.reopen().await {
            tracing::error!(%error, "SIGHUP: cannot reopen the audit log; still writing the old file");
        }
    }
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
