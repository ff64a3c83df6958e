//! [`KvClient`]: the client API from Rust, over one keep-alive HTTP/1.1 connection
//! (hyper). The CLI, the kill test and the benchmark use it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::api::types::{CasAnswer, CasBody, GetAnswer, PutBody, WriteAnswer};
use crate::api::{ErrorBody, LogDigest, NodeStatus, StateDigest};
use crate::kv::{KvOp, KvOutcome};

/// Why a request failed. [`ClientError::may_have_taken_effect`] says whether the
/// operation may still be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No connection: nothing was sent.
    #[error("cannot connect to node at {addr}: {source}")]
    Connect {
        /// The node's API address.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The connection failed after the request may have been sent.
    #[error("the connection to {addr} failed: {detail} (the operation may have taken effect)")]
    Io {
        /// The node's API address.
        addr: String,
        /// What failed.
        detail: String,
    },
    /// No answer within the client's timeout.
    #[error("no answer from {addr} within {after:?} (the operation may have taken effect)")]
    Timeout {
        /// The node's API address.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// The node answered with an error.
    #[error("node at {addr} answered {status}: {}{}", body.error, leader_note(body))]
    Api {
        /// The node's API address.
        addr: String,
        /// The HTTP status.
        status: u16,
        /// The error it sent.
        body: ErrorBody,
    },
    /// The node's answer could not be read.
    #[error("unreadable answer from {addr} (status {status}): {detail}")]
    BadAnswer {
        /// The node's API address.
        addr: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
}

fn leader_note(body: &ErrorBody) -> String {
    match &body.leader {
        Some(l) => match &l.api {
            Some(api) => format!(" (leader: node {} at {api})", l.id),
            None => format!(" (leader: node {})", l.id),
        },
        None => String::new(),
    }
}

impl ClientError {
    /// Whether the operation may have been applied or may still be: `false` only when it
    /// certainly was not (nothing was sent, or the node said it was not applied).
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            ClientError::Connect { .. } => false,
            ClientError::Api { body, .. } => body.kind == crate::api::ErrorKind::Unknown,
            ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::BadAnswer { .. } => true,
        }
    }
}

/// A client of one node's API.
pub struct KvClient {
    addr: String,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for KvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvClient")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `key` with every byte but unreserved ones percent-encoded, for a URL path.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl KvClient {
    /// A client of the node whose API listens at `addr` (`host:port`, with or without
    /// `http://`); connects at the first request. Each request waits at most `timeout`.
    pub fn new(addr: &str, timeout: Duration) -> Self {
        let addr = addr.trim_start_matches("http://").trim_end_matches('/').to_owned();
        KvClient { addr, timeout, conn: None }
    }

    /// The node's API address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Reads `key` (linearizable: through the log).
    pub async fn get(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        let a: GetAnswer =
            self.call(Method::GET, &format!("/v1/kv/{}", encode_key(key)), None::<&()>).await?;
        Ok(a.value)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<Option<String>, ClientError> {
        let body = PutBody { value: value.to_owned() };
        let a: WriteAnswer =
            self.call(Method::PUT, &format!("/v1/kv/{}", encode_key(key)), Some(&body)).await?;
        Ok(a.previous)
    }

    /// Removes `key`; returns the value it had.
    pub async fn delete(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        let a: WriteAnswer =
            self.call(Method::DELETE, &format!("/v1/kv/{}", encode_key(key)), None::<&()>).await?;
        Ok(a.previous)
    }

    /// Sets `key` to `new` if it holds `expected` (`None`: if it is absent).
    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<CasAnswer, ClientError> {
        let body = CasBody { expected: expected.map(str::to_owned), new: new.to_owned() };
        self.call(Method::POST, &format!("/v1/kv/{}/cas", encode_key(key)), Some(&body)).await
    }

    /// Runs `op` and returns its outcome.
    pub async fn perform(&mut self, op: &KvOp) -> Result<KvOutcome, ClientError> {
        Ok(match op {
            KvOp::Put { key, value } => KvOutcome::Put { previous: self.put(key, value).await? },
            KvOp::Get { key } => KvOutcome::Get { value: self.get(key).await? },
            KvOp::Delete { key } => KvOutcome::Delete { previous: self.delete(key).await? },
            KvOp::Cas { key, expected, new } => {
                let a = self.cas(key, expected.as_deref(), new).await?;
                KvOutcome::Cas { ok: a.ok, current: a.current }
            }
        })
    }

    /// The node's status.
    pub async fn status(&mut self) -> Result<NodeStatus, ClientError> {
        self.call(Method::GET, "/v1/status", None::<&()>).await
    }

    /// A digest of the node's applied state.
    pub async fn state_digest(&mut self) -> Result<StateDigest, ClientError> {
        self.call(Method::GET, "/v1/debug/state", None::<&()>).await
    }

    /// A digest of the node's decided entries `[from, to)`.
    pub async fn log_digest(&mut self, from: usize, to: usize) -> Result<LogDigest, ClientError> {
        self.call(Method::GET, &format!("/v1/debug/log-digest?from={from}&to={to}"), None::<&()>)
            .await
    }

    /// Sends raw bytes as the body of `method path` and returns the status and body (for
    /// tests of bad requests).
    pub async fn raw(
        &mut self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let timeout = self.timeout;
        let addr = self.addr.clone();
        match tokio::time::timeout(timeout, self.exchange(method, path, body)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(ClientError::Timeout { addr, after: timeout })
            }
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::BadAnswer {
                addr: self.addr.clone(),
                status: 0,
                detail: format!("encoding the request: {e}"),
            })?,
            None => Vec::new(),
        };
        let (status, answer) = self.raw(method, path, bytes).await?;
        let addr = self.addr.clone();
        if status == 200 {
            serde_json::from_slice(&answer).map_err(|e| ClientError::BadAnswer {
                addr,
                status,
                detail: e.to_string(),
            })
        } else {
            match serde_json::from_slice::<ErrorBody>(&answer) {
                Ok(body) => Err(ClientError::Api { addr, status, body }),
                Err(e) => Err(ClientError::BadAnswer {
                    addr,
                    status,
                    detail: format!("{e}: {}", String::from_utf8_lossy(&answer)),
                }),
            }
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let addr = self.addr.clone();
        let mut conn = match self.conn.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.connect().await?,
        };
        let io = |detail: String| ClientError::Io { addr: addr.clone(), detail };
        conn.ready().await.map_err(|e| io(e.to_string()))?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| io(format!("building the request: {e}")))?;
        let response = conn.send_request(request).await.map_err(|e| io(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| io(e.to_string()))?.to_bytes();
        self.conn = Some(conn);
        Ok((status, bytes.to_vec()))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let connect_err = |source| ClientError::Connect { addr: self.addr.clone(), source };
        let stream = TcpStream::connect(&self.addr).await.map_err(connect_err)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| {
                ClientError::Connect { addr: self.addr.clone(), source: std::io::Error::other(e) }
            })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_encoded_for_the_path() {
        assert_eq!(encode_key("plain-key_1.~"), "plain-key_1.~");
        assert_eq!(encode_key("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_key("é"), "%C3%A9");
    }
}
