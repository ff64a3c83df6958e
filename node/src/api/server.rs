//! The HTTP server of the client API (axum). Each handler checks the request, hands the
//! operation to the replica thread, and waits for it to be applied, at most the
//! request timeout.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::types::{CasAnswer, CasBody, GetAnswer, PutBody, WriteAnswer};
use super::{ErrorBody, ErrorKind, LeaderHint, NodeStatus, OpError};
use crate::driver::{Input, Reply};
use crate::kv::{KvOp, KvOutcome, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::NodeAddr;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = MAX_VALUE_BYTES * 2 + MAX_KEY_BYTES + 1024;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) inputs: SyncSender<Input>,
    pub(crate) status: Arc<Mutex<NodeStatus>>,
    pub(crate) nodes: Arc<Vec<NodeAddr>>,
    pub(crate) timeout: Duration,
    /// Serve gets from local state (the broken variant).
    #[cfg(feature = "testing")]
    pub(crate) local_reads: bool,
}

/// The client API's routes.
pub(crate) fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/kv/{key}", get(get_key).put(put_key).delete(delete_key))
        .route("/v1/kv/{key}/cas", post(cas_key))
        .route("/v1/status", get(status))
        .route("/v1/debug/state", get(state_digest))
        .route("/v1/debug/log-digest", get(log_digest))
        .fallback(not_found)
        .with_state(state)
}

fn json<T: Serialize>(code: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the answer: {e}")).into_response()
        }
    }
}

impl ApiState {
    fn leader(&self) -> Option<LeaderHint> {
        let id = self.status.lock().ok()?.leader?;
        let api = self.nodes.iter().find(|n| n.id == id).and_then(|n| n.api).map(|a| a.to_string());
        Some(LeaderHint { id, api })
    }

    fn error(&self, code: StatusCode, kind: ErrorKind, error: String) -> Response {
        let leader = match kind {
            ErrorKind::Unavailable | ErrorKind::Unknown => self.leader(),
            ErrorKind::BadRequest | ErrorKind::NotFound => None,
        };
        json(code, &ErrorBody { error, kind, leader })
    }

    fn bad_request(&self, error: String) -> Response {
        self.error(StatusCode::BAD_REQUEST, ErrorKind::BadRequest, error)
    }

    /// Hands `input` to the replica thread and waits for the reply.
    async fn submit(
        &self,
        input: Input,
        reply: oneshot::Receiver<Reply>,
    ) -> Result<KvOutcome, Response> {
        match self.inputs.try_send(input) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(self.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorKind::Unavailable,
                    "the node is overloaded (its input queue is full); the operation was not applied, retry".into(),
                ))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(self.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorKind::Unavailable,
                    "the node is shutting down; the operation was not applied".into(),
                ))
            }
        }
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(OpError::Unavailable(why)))) => {
                Err(self.error(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Unavailable, why))
            }
            Ok(Ok(Err(OpError::Unknown(why)))) => {
                Err(self.error(StatusCode::GATEWAY_TIMEOUT, ErrorKind::Unknown, why))
            }
            Ok(Err(_)) => Err(self.error(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorKind::Unknown,
                "the replica thread ended before the operation was applied; it may still take effect".into(),
            )),
            Err(_) => {
                let leader = match self.leader() {
                    Some(l) => format!("the leader is node {}", l.id),
                    None => "no leader is known".into(),
                };
                Err(self.error(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorKind::Unknown,
                    format!(
                        "not applied within {:?} ({leader}); the operation may still take effect",
                        self.timeout
                    ),
                ))
            }
        }
    }

    async fn run(&self, op: KvOp) -> Result<KvOutcome, Response> {
        if let Err(why) = op.validate() {
            return Err(self.bad_request(why));
        }
        let (tx, rx) = oneshot::channel();
        #[cfg(feature = "testing")]
        if self.local_reads {
            if let KvOp::Get { key } = op {
                return self.submit(Input::LocalRead { key, reply: tx }, rx).await;
            }
        }
        self.submit(Input::Client { op, reply: tx }, rx).await
    }
}

/// The key from the path, or why it is not one.
fn key_of(key: Result<Path<String>, PathRejection>) -> Result<String, String> {
    key.map(|Path(k)| k).map_err(|e| format!("bad key in the path: {e}"))
}

async fn body_of<T: for<'de> Deserialize<'de>>(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Response> {
    let too_large = || {
        state.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BadRequest,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    // Refuse a declared length over the limit before reading any of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| too_large())?;
    serde_json::from_slice(&bytes).map_err(|e| state.bad_request(format!("bad JSON body: {e}")))
}

fn answer(result: Result<KvOutcome, Response>) -> Response {
    match result {
        Ok(KvOutcome::Get { value }) => json(StatusCode::OK, &GetAnswer { value }),
        Ok(KvOutcome::Put { previous } | KvOutcome::Delete { previous }) => {
            json(StatusCode::OK, &WriteAnswer { previous })
        }
        Ok(KvOutcome::Cas { ok, current }) => json(StatusCode::OK, &CasAnswer { ok, current }),
        Err(response) => response,
    }
}

async fn get_key(State(s): State<ApiState>, key: Result<Path<String>, PathRejection>) -> Response {
    match key_of(key) {
        Ok(key) => answer(s.run(KvOp::Get { key }).await),
        Err(why) => s.bad_request(why),
    }
}

async fn put_key(
    State(s): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    with_body(&s, key, &headers, body, |key, PutBody { value }| KvOp::Put { key, value }).await
}

/// Runs the operation `op` makes of the path's key and the request's JSON body; a bad key
/// or body is refused before anything runs.
async fn with_body<B: for<'de> Deserialize<'de>>(
    s: &ApiState,
    key: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
    op: impl FnOnce(String, B) -> KvOp,
) -> Response {
    let key = match key_of(key) {
        Ok(k) => k,
        Err(why) => return s.bad_request(why),
    };
    match body_of::<B>(s, headers, body).await {
        Ok(b) => answer(s.run(op(key, b)).await),
        Err(r) => r,
    }
}

async fn delete_key(
    State(s): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
) -> Response {
    match key_of(key) {
        Ok(key) => answer(s.run(KvOp::Delete { key }).await),
        Err(why) => s.bad_request(why),
    }
}

async fn cas_key(
    State(s): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    with_body(&s, key, &headers, body, |key, CasBody { expected, new }| KvOp::Cas {
        key,
        expected,
        new,
    })
    .await
}

async fn status(State(s): State<ApiState>) -> Response {
    let status = s.status.lock().map(|g| g.clone()).unwrap_or_default();
    json(StatusCode::OK, &status)
}

async fn state_digest(State(s): State<ApiState>) -> Response {
    let (tx, rx) = oneshot::channel();
    ask(&s, Input::StateDigest { reply: tx }, rx).await
}

/// The range of `GET /v1/debug/log-digest`.
#[derive(Debug, Deserialize)]
struct DigestRange {
    from: usize,
    to: usize,
}

async fn log_digest(
    State(s): State<ApiState>,
    q: Result<Query<DigestRange>, QueryRejection>,
) -> Response {
    let Query(DigestRange { from, to }) = match q {
        Ok(q) => q,
        Err(e) => return s.bad_request(format!("expected ?from=A&to=B: {e}")),
    };
    let (tx, rx) = oneshot::channel();
    match ask_raw(&s, Input::LogDigest { from, to, reply: tx }, rx).await {
        Ok(Ok(digest)) => json(StatusCode::OK, &digest),
        Ok(Err(why)) => s.bad_request(why),
        Err(r) => r,
    }
}

/// Asks the replica thread something that needs no log.
async fn ask<T: Serialize>(s: &ApiState, input: Input, rx: oneshot::Receiver<T>) -> Response {
    match ask_raw(s, input, rx).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(r) => r,
    }
}

async fn ask_raw<T>(s: &ApiState, input: Input, rx: oneshot::Receiver<T>) -> Result<T, Response> {
    let unavailable = |why: &str| {
        s.error(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Unavailable, why.to_owned())
    };
    if s.inputs.try_send(input).is_err() {
        return Err(unavailable("the node is overloaded or shutting down"));
    }
    match tokio::time::timeout(s.timeout, rx).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(unavailable("the replica thread did not answer")),
    }
}

async fn not_found(State(s): State<ApiState>) -> Response {
    s.error(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        "no such route; see GET/PUT/DELETE /v1/kv/{key}, POST /v1/kv/{key}/cas, GET /v1/status"
            .into(),
    )
}
