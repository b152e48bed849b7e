//! The embedded proxy (`caplab proxy`) on its own thread and runtime, as a separate process
//! would be, so its work does not share the bench's runtime; stopped on drop.

use std::net::SocketAddr;
use std::time::Duration;

use caplab::proxy::ProxyServer;

use super::Failure;

/// The embedded proxy on its own thread and runtime, as a separate process would be.
pub struct Proxy {
    /// Its API address.
    pub api: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts it and waits for its API address.
    pub fn start() -> Result<Proxy, Failure> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(server) = ProxyServer::start("127.0.0.1:0".parse().expect("address")).await
                else {
                    return;
                };
                let _ = addr_tx.send(server.api_addr());
                let _ = stopped.await;
                server.shutdown().await;
            });
        });
        let api = addr_rx.recv_timeout(Duration::from_secs(10))?;
        Ok(Proxy {
            api,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
