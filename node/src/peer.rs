//! The connections between nodes: one outbound connection per peer, dialled and
//! re-dialled by this node, and the inbound connections other nodes dialled.
//!
//! Outbound, each peer has a bounded queue (frames and bytes): the replica thread never
//! waits for a slow or dead peer; a frame that does not fit is dropped and counted (the
//! replica's retransmission covers lost messages). A dialler that loses its connection
//! drops what was queued and re-dials with exponential backoff (50 ms doubling to 2 s).
//!
//! Inbound, a connection must open with a hello that [`Hello::check`] accepts; then each
//! frame must be a message from the dialler to this node. Any violation closes that
//! connection with a logged [`WireError`], and nothing reaches the replica.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

use crate::driver::Input;
use crate::wire::{codec, Hello, PeerFrame, WireError};
use crate::NodeConfig;

/// How long a handshake may take, either side.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The replica thread's handle on every peer's outbound queue.
pub(crate) struct Peers {
    queues: HashMap<u64, PeerQueue>,
    dropped: Arc<AtomicU64>,
}

struct PeerQueue {
    tx: mpsc::Sender<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Peers {
    /// Queues `frame` for peer `to`, or drops it if that peer's queue is full.
    pub(crate) fn send(&self, to: u64, frame: Bytes) {
        let Some(q) = self.queues.get(&to) else { return };
        let len = frame.len();
        if q.queued_bytes.load(Ordering::Relaxed) + len > q.max_bytes {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if q.tx.try_send(frame).is_err() {
            q.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Frames dropped so far because a peer's queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts a dialler for every peer; returns the replica thread's handle on their queues.
pub(crate) fn start_diallers(config: &NodeConfig, shutdown: &watch::Receiver<bool>) -> Peers {
    let dropped = Arc::new(AtomicU64::new(0));
    let mut queues = HashMap::new();
    for peer in config.nodes.iter().filter(|n| n.id != config.id) {
        let (tx, rx) = mpsc::channel(config.peer_queue_frames);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let dialler = Dialler {
            me: config.id,
            to: peer.id,
            addr: peer.peer,
            hello: config.hello_to(peer.id),
            max_frame: config.max_frame_bytes,
            queued_bytes: queued_bytes.clone(),
            dropped: dropped.clone(),
        };
        tokio::spawn(dialler.run(rx, shutdown.clone()));
        queues.insert(peer.id, PeerQueue { tx, queued_bytes, max_bytes: config.peer_queue_bytes });
    }
    Peers { queues, dropped }
}

/// Keeps one outbound connection to one peer.
struct Dialler {
    me: u64,
    to: u64,
    addr: SocketAddr,
    hello: Hello,
    max_frame: usize,
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl Dialler {
    async fn run(self, mut rx: mpsc::Receiver<Bytes>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_MIN;
        let mut last_error = String::new();
        loop {
            let outcome = tokio::select! {
                r = self.connect() => r,
                _ = shutdown.changed() => return,
            };
            match outcome {
                Ok(framed) => {
                    tracing::info!(node = self.me, peer = self.to, addr = %self.addr, "connected");
                    backoff = BACKOFF_MIN;
                    last_error.clear();
                    let err = tokio::select! {
                        e = self.pump(framed, &mut rx) => e,
                        _ = shutdown.changed() => return,
                    };
                    tracing::info!(node = self.me, peer = self.to, %err, "connection lost");
                }
                Err(err) => {
                    // Log a failure once, not at every retry.
                    let text = err.to_string();
                    if text != last_error {
                        match err {
                            WireError::RefusedByPeer(_) => {
                                tracing::error!(node = self.me, peer = self.to, %err, "refused")
                            }
                            _ => {
                                tracing::debug!(node = self.me, peer = self.to, %err, "cannot connect")
                            }
                        }
                        last_error = text;
                    }
                }
            }
            // Whatever waited for the lost connection is stale: drop it.
            while let Ok(frame) = rx.try_recv() {
                self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Dials and completes the handshake.
    async fn connect(
        &self,
    ) -> Result<Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>, WireError> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, codec(self.max_frame));
        let handshake = async {
            framed.send(PeerFrame::Hello(self.hello.clone()).encode()?).await?;
            match framed.next().await {
                Some(Ok(bytes)) => match PeerFrame::decode(&bytes)? {
                    PeerFrame::Welcome { node } if node == self.to => Ok(()),
                    PeerFrame::Welcome { node } => Err(WireError::Misaddressed {
                        from: node,
                        to: self.me,
                        peer: self.to,
                        me: self.me,
                    }),
                    PeerFrame::Refused { reason } => Err(WireError::RefusedByPeer(reason)),
                    other => Err(WireError::Unexpected { expected: "welcome", got: other.kind() }),
                },
                Some(Err(e)) => Err(WireError::from_codec(e, self.max_frame)),
                None => Err(WireError::Closed),
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(())) => Ok(framed),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(WireError::Timeout(HANDSHAKE_TIMEOUT)),
        }
    }

    /// Writes queued frames until the connection fails; what arrived together is
    /// flushed together.
    async fn pump(
        &self,
        mut framed: Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>,
        rx: &mut mpsc::Receiver<Bytes>,
    ) -> WireError {
        loop {
            let Some(frame) = rx.recv().await else { return WireError::Closed };
            self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
            if let Err(e) = framed.feed(frame).await {
                return WireError::Io(e);
            }
            while let Ok(frame) = rx.try_recv() {
                self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                if let Err(e) = framed.feed(frame).await {
                    return WireError::Io(e);
                }
            }
            if let Err(e) = SinkExt::<Bytes>::flush(&mut framed).await {
                return WireError::Io(e);
            }
        }
    }
}

/// Accepts peer connections until shutdown.
pub(crate) async fn accept_loop(
    config: Arc<NodeConfig>,
    listener: TcpListener,
    inputs: SyncSender<Input>,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(node = config.id, %err, "accepting a peer connection");
                    tokio::time::sleep(BACKOFF_MIN).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let (config, inputs, mut stop) = (config.clone(), inputs.clone(), shutdown.clone());
        tokio::spawn(async move {
            let err = tokio::select! {
                e = serve_peer(&config, stream, &inputs) => e,
                _ = stop.changed() => return,
            };
            match err {
                WireError::Closed | WireError::Io(_) => {
                    tracing::info!(node = config.id, %addr, %err, "peer connection closed")
                }
                _ => {
                    tracing::warn!(node = config.id, %addr, reason = %err, "closed a peer connection")
                }
            }
        });
    }
}

/// One inbound connection: the handshake, then messages to the replica thread. Returns
/// why it ended.
async fn serve_peer(
    config: &NodeConfig,
    stream: TcpStream,
    inputs: &SyncSender<Input>,
) -> WireError {
    let max = config.max_frame_bytes;
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, codec(max));
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
        Err(_) => return WireError::Timeout(HANDSHAKE_TIMEOUT),
        Ok(None) => return WireError::Closed,
        Ok(Some(Err(e))) => return WireError::from_codec(e, max),
        Ok(Some(Ok(bytes))) => match PeerFrame::decode(&bytes) {
            Ok(PeerFrame::Hello(h)) => h,
            Ok(other) => return WireError::Unexpected { expected: "hello", got: other.kind() },
            Err(e) => return e,
        },
    };
    let expected = Hello { from: 0, ..config.hello_to(config.id) };
    if let Err(refusal) = hello.check(&expected) {
        if let Ok(frame) = (PeerFrame::Refused { reason: refusal.to_string() }).encode() {
            let _ = framed.send(frame).await;
        }
        return WireError::Handshake(refusal);
    }
    match (PeerFrame::Welcome { node: config.id }).encode() {
        Ok(frame) => {
            if let Err(e) = framed.send(frame).await {
                return WireError::Io(e);
            }
        }
        Err(e) => return e,
    }
    let peer = hello.from;
    tracing::info!(node = config.id, peer, "peer connected");
    loop {
        let bytes = match framed.next().await {
            None => return WireError::Closed,
            Some(Err(e)) => return WireError::from_codec(e, max),
            Some(Ok(bytes)) => bytes,
        };
        let msg = match PeerFrame::decode(&bytes) {
            Ok(PeerFrame::Message(msg)) => msg,
            Ok(other) => return WireError::Unexpected { expected: "message", got: other.kind() },
            Err(e) => return e,
        };
        if msg.from != peer || msg.to != config.id {
            return WireError::Misaddressed { from: msg.from, to: msg.to, peer, me: config.id };
        }
        match inputs.try_send(Input::Peer(msg)) {
            Ok(()) => {}
            // The replica is behind: drop the message, as a lossy network would.
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => return WireError::Closed,
        }
    }
}
