//! kubegate as its own process (the built binary, `kubegate serve`), for what an in-process
//! gateway cannot show: a SIGKILL, a file-size limit standing in for a full disk, signals,
//! environment-configured exporters.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use super::{GatewayFiles, GatewayOptions, McpClient, cluster, cluster::free_port};

/// A `kubegate serve` process and the files it was configured with.
pub struct ServedProcess {
    pub url: String,
    pub audit_log: PathBuf,
    pub files: GatewayFiles,
    pub port: u16,
    child: Child,
    log: PathBuf,
}

/// How to start it.
#[derive(Default)]
pub struct Launch {
    /// Environment variables for the process.
    pub env: Vec<(String, String)>,
    /// The most bytes the process may write to any one file (`ulimit -f`), with SIGXFSZ
    /// ignored so that a write past it fails as on a full disk.
    pub max_file_bytes: Option<u64>,
}

impl ServedProcess {
    /// Writes a configuration and starts `kubegate serve`; returns once `/healthz` answers.
    pub async fn start(options: &GatewayOptions, launch: Launch) -> Result<ServedProcess> {
        let port = free_port()?;
        let files = GatewayFiles::write(cluster(), options, &format!("127.0.0.1:{port}"))?;
        ServedProcess::start_with(files, port, launch).await
    }

    /// Starts `kubegate serve` on files written before (a restart).
    pub async fn start_with(
        files: GatewayFiles,
        port: u16,
        launch: Launch,
    ) -> Result<ServedProcess> {
        let log = files.dir.path().join(format!(
            "kubegate-{}.log",
            jiff::Timestamp::now().as_millisecond()
        ));
        let binary = kubegate_binary()?;
        let config = files.config_file.display().to_string();
        let mut command = match launch.max_file_bytes {
            Some(bytes) => {
                let mut sh = Command::new("bash");
                // bash counts `ulimit -f` in 1024-byte blocks.
                sh.arg("-c").arg(format!(
                    "trap '' XFSZ; ulimit -f {}; exec \"$0\" serve --config \"$1\"",
                    bytes.div_ceil(1024)
                ));
                sh.arg(&binary).arg(&config);
                sh
            }
            None => {
                let mut direct = Command::new(&binary);
                direct.arg("serve").arg("--config").arg(&config);
                direct
            }
        };
        command
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KUBEGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        let child = command.spawn().context("starting kubegate serve")?;
        let audit_log = files.dir.path().join("audit.log");
        let mut served = ServedProcess {
            url: format!("https://127.0.0.1:{port}/mcp"),
            audit_log,
            files,
            port,
            child,
            log,
        };
        served.wait_healthy().await?;
        Ok(served)
    }

    /// Starts another replica of this one's configuration ([`GatewayFiles::replica`]) on a
    /// port of its own.
    pub async fn replica(&self, launch: Launch) -> Result<ServedProcess> {
        let port = free_port()?;
        let files = self.files.replica(&format!("127.0.0.1:{port}"))?;
        ServedProcess::start_with(files, port, launch).await
    }

    async fn wait_healthy(&mut self) -> Result<()> {
        let client = self.client();
        let health = format!("https://127.0.0.1:{}/healthz", self.port);
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "kubegate exited ({status}) before it was healthy:\n{}",
                    self.log_text()
                );
            }
            if client
                .http
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "kubegate did not become healthy within 30 s:\n{}",
            self.log_text()
        )
    }

    /// An MCP client for it.
    pub fn client(&self) -> McpClient {
        McpClient::new(&self.url, &self.files.ca_pem)
    }

    /// A dev token of its issuer.
    pub fn token(&self, user: &str, groups: &[&str], tenant: &str) -> String {
        self.files.token(user, groups, tenant)
    }

    /// The process id (what a bench reads `/proc/<pid>/status` of).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What it has written to stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it with SIGKILL, as the OOM killer or a node failure would; returns its files.
    pub async fn kill(mut self) -> Result<GatewayFiles> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(self.files)
    }

    /// Stops it with SIGTERM and waits for it to finish its shutdown.
    pub async fn stop(mut self) -> Result<GatewayFiles> {
        self.signal("TERM").await?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("kubegate did not stop within 30 s of SIGTERM")??;
        if !status.success() {
            bail!("kubegate stopped with {status}:\n{}", self.log_text());
        }
        Ok(self.files)
    }

    /// Sends a signal (`HUP`, `TERM`) by name.
    pub async fn signal(&self, name: &str) -> Result<()> {
        let pid = self.child.id().context("kubegate has exited")?;
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .await?;
        if !status.success() {
            bail!("kill -{name} {pid} failed");
        }
        Ok(())
    }
}

/// The kubegate binary cargo built beside these tests or benches; `KUBEGATE_BENCH_BIN` names
/// another build instead, so a bench can compare two builds on the same machine in one sitting.
pub fn kubegate_binary() -> Result<PathBuf> {
    if let Some(other) = std::env::var_os("KUBEGATE_BENCH_BIN") {
        return Ok(other.into());
    }
    // Set for integration tests and benches (examples include this module too).
    option_env!("CARGO_BIN_EXE_kubegate")
        .map(Into::into)
        .context("the kubegate binary is built for integration tests only")
}
