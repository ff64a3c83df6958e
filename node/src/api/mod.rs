//! The client API: HTTP/1.1 with JSON bodies ([`server`] serves it, [`crate::client`]
//! calls it; [`types`] are the bodies both speak).
//!
//! | request | body | answer (200) |
//! |---|---|---|
//! | `GET /v1/kv/{key}` | | `{"value": "v" \| null}` |
//! | `PUT /v1/kv/{key}` | `{"value": "v"}` | `{"previous": "old" \| null}` |
//! | `DELETE /v1/kv/{key}` | | `{"previous": "old" \| null}` |
//! | `POST /v1/kv/{key}/cas` | `{"expected": "v" \| null, "new": "w"}` | `{"ok": true, "current": "w"}` |
//! | `GET /v1/status` | | [`NodeStatus`] |
//! | `GET /v1/debug/state` | | [`StateDigest`] |
//! | `GET /v1/debug/log-digest?from=A&to=B` | | [`LogDigest`] |
//!
//! Every error is a JSON [`ErrorBody`]: `400` for a bad request (what was wrong, by
//! name), `413` for a body over the limit, `503` when the operation was **not** applied
//! (the node is overloaded or its replica stopped), `504` when the node does not know
//! whether it will be (it was appended but not applied within the request timeout, or
//! the replica stopped after appending it). `503` and `504` name the leader this node
//! knows, with its API address.

pub mod server;
pub mod types;

pub use types::{ErrorBody, ErrorKind, LeaderHint, LogDigest, NodeStatus, OpError, StateDigest};
