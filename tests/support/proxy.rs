//! A loopback TCP proxy that a test can cut and restore: it stands between kubegate and the
//! API server to show what kubegate does when the API server goes away (its TLS passes
//! through untouched).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy: its address, and the tasks to abort when it is cut.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts forwarding `127.0.0.1:<free port>` to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Proxy {
            addr: listener.local_addr()?,
            upstream,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(connection);
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(accept);
    }

    /// Drops every connection and stops listening: new connections are refused.
    pub fn cut(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// Drops every connection, then accepts new ones and never answers (an API server that hangs).
    pub async fn black_hole(&self) -> Result<()> {
        self.cut();
        let listener = self.rebind().await?;
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(held);
        Ok(())
    }

    /// Listens again on the same address.
    pub async fn restore(&self) -> Result<()> {
        let listener = self.rebind().await?;
        self.serve(listener);
        Ok(())
    }

    /// Binds the proxy's address again, once the cut listener is gone (its task's abort takes
    /// effect when the task is next polled).
    async fn rebind(&self) -> Result<TcpListener> {
        let mut last = None;
        for _ in 0..100 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => return Ok(listener),
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(last.map_or_else(|| anyhow::anyhow!("cannot bind"), anyhow::Error::from))
    }

    /// `https://<addr>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}
