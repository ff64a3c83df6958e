//! [`Node`]: starts everything a node runs — the replica thread, the peer diallers and
//! listener, the client API — and stops it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::server::{router, ApiState};
use crate::api::NodeStatus;
use crate::driver::{Driver, StartError};
use crate::{peer, NodeConfig};

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration cannot run.
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// A listening socket could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `"peers"` or `"clients"`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The node's directory could not be created.
    #[error("cannot create the node directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The store or the replica did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The replica thread could not be spawned or died while starting.
    #[error("the replica thread: {0}")]
    Thread(String),
}

/// A running node. Dropping it does not stop it; call [`Node::shutdown`].
#[derive(Debug)]
pub struct Node {
    id: u64,
    api_addr: SocketAddr,
    peer_addr: SocketAddr,
    stop: watch::Sender<bool>,
    replica_stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Starts a node on the current tokio runtime: binds its peer and API addresses,
    /// opens its store (applying what is already decided), and starts serving.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        let me = config.me().cloned().ok_or_else(|| NodeError::Config("no such node".into()))?;
        let api_addr =
            config.api_addr().ok_or_else(|| NodeError::Config("no API address".into()))?;
        std::fs::create_dir_all(&config.dir)
            .map_err(|source| NodeError::Dir { path: config.dir.display().to_string(), source })?;
        let peer_listener = TcpListener::bind(me.peer).await.map_err(|source| NodeError::Bind {
            what: "peers",
            addr: me.peer,
            source,
        })?;
        let api_listener = TcpListener::bind(api_addr).await.map_err(|source| NodeError::Bind {
            what: "clients",
            addr: api_addr,
            source,
        })?;
        let peer_addr = peer_listener.local_addr().unwrap_or(me.peer);
        let api_addr = api_listener.local_addr().unwrap_or(api_addr);

        let (stop, stopped) = watch::channel(false);
        let replica_stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(NodeStatus::default()));
        let peers = peer::start_diallers(&config, &stopped);
        let (inputs, rx) = sync_channel(config.input_queue);

        // The store opens on the replica thread (storage need not be `Send`).
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let thread = {
            let (config, status, replica_stop) =
                (config.clone(), status.clone(), replica_stop.clone());
            std::thread::Builder::new()
                .name(format!("replica-{}", config.id))
                .spawn(move || match Driver::open(config, peers, status, replica_stop) {
                    Ok(driver) => {
                        let _ = ready_tx.send(Ok(()));
                        driver.run(rx);
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                })
                .map_err(|e| NodeError::Thread(e.to_string()))?
        };
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                let _ = stop.send(true);
                let _ = thread.join();
                return Err(err.into());
            }
            Err(_) => {
                let _ = stop.send(true);
                return Err(NodeError::Thread("it ended while opening the store".into()));
            }
        }

        let config = Arc::new(config);
        tokio::spawn(peer::accept_loop(
            config.clone(),
            peer_listener,
            inputs.clone(),
            stopped.clone(),
        ));
        let state = ApiState {
            inputs,
            status,
            nodes: Arc::new(config.nodes.clone()),
            timeout: config.request_timeout,
            #[cfg(feature = "testing")]
            local_reads: config.unsafe_local_reads,
        };
        let mut until = stopped.clone();
        let app = router(state);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = until.wait_for(|s| *s).await;
            };
            if let Err(err) = axum::serve(api_listener, app).with_graceful_shutdown(shutdown).await
            {
                tracing::error!(%err, "the client API server failed");
            }
        });
        tracing::info!(node = config.id, api = %api_addr, peers = %peer_addr, backend = %config.backend, durability = %config.durability, "node started");
        Ok(Node {
            id: config.id,
            api_addr,
            peer_addr,
            stop,
            replica_stop,
            thread: Some(thread),
            server,
        })
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where the client API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where peers connect.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Stops serving clients and peers, and stops the replica thread after its current
    /// step (everything it acknowledged is written).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.replica_stop.store(true, Ordering::Relaxed);
        let _ = (&mut self.server).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!(node = self.id, "node stopped");
    }
}
