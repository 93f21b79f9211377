//! A bare TLS reverse proxy, nginx, in front of the same API server: the cost of a second hop
//! alone (TLS in, TLS out, the answer copied through) with no JWT, no policy, no audit and no
//! rewriting. The list bench's h2load view measures it beside kubegate, so that what a proxy
//! costs on the machine at hand is a figure of the same run, not a guess.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// nginx's master process, stopped when dropped.
pub struct Nginx {
    master: Child,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
}

/// Where nginx is, if it is installed (Debian: `nginx-light`).
pub fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// What the proxy needs to know.
pub struct Upstream<'a> {
    /// The API server, `https://127.0.0.1:<port>`.
    pub api_server: &'a str,
    /// The bearer token the proxy adds to each request.
    pub token: &'a str,
    /// The user and group the proxy impersonates on each request.
    pub user: &'a str,
    pub group: &'a str,
    /// The certificate and key the proxy serves (kubegate's, so both are alike to the client).
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Nginx {
    /// Starts nginx with two workers (kubegate runs two) on a free loopback port, HTTP/1.1 and
    /// HTTP/2 over TLS toward the client, HTTP/1.1 over TLS with kept-alive connections toward
    /// the API server.
    pub fn start(nginx: &Path, dir: &Path, port: u16, upstream: &Upstream) -> Result<Nginx> {
        let api = upstream
            .api_server
            .strip_prefix("https://")
            .context("the API server's URL is not https")?;
        let dir = dir.join("nginx");
        std::fs::create_dir_all(&dir)?;
        // Answers (~40 KB) fit the proxy buffers, so nothing goes through temporary files.
        // The upstream certificate is not verified: with kept-alive connections the handshake is
        // once per connection, not per call, so it does not weigh on what is measured.
        let config = format!(
            r#"
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream api {{
        server {api};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass https://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {token}";
            proxy_set_header Impersonate-User "{user}";
            proxy_set_header Impersonate-Group "{group}";
            proxy_ssl_verify off;
            proxy_ssl_session_reuse on;
            proxy_buffer_size 16k;
            proxy_buffers 16 16k;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"#,
            dir = dir.display(),
            cert = upstream.cert.display(),
            key = upstream.key.display(),
            token = upstream.token,
            user = upstream.user,
            group = upstream.group,
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, config)?;
        let log = std::fs::File::create(dir.join("stderr.log"))?;
        let master = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&file)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting nginx")?;
        let mut nginx = Nginx {
            master,
            url: format!("https://127.0.0.1:{port}"),
        };
        // Ready when both workers are there and the port answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = nginx.master.try_wait()? {
                let errors = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited ({status}): {errors}");
            }
            if nginx.pids()?.len() == 3 && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                bail!("nginx did not come up within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The master's process id and its workers'.
    pub fn pids(&self) -> Result<Vec<u32>> {
        let master = self.master.id();
        let mut pids = vec![master];
        for entry in std::fs::read_dir("/proc")? {
            let Some(pid) = entry?
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // After the parenthesised name: state, then the parent's pid.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if parent == Some(master) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM is nginx's fast shutdown: the workers go with the master.
        let _ = Command::new("kill")
            .arg(self.master.id().to_string())
            .status();
        let _ = self.master.wait();
    }
}
