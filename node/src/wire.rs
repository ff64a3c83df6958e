//! What nodes say to each other over TCP, and the checks on it.
//!
//! Format: every frame is a 4-byte big-endian length followed by that many bytes
//! (tokio-util's length-delimited codec, at most [`NodeConfig::max_frame_bytes`]); the
//! bytes are one postcard-encoded [`PeerFrame`] and nothing after it.
//!
//! Each node dials every other node and sends on that connection only; it receives on
//! the connections others dialled. A connection starts with the dialler's
//! [`PeerFrame::Hello`]; the listener checks it ([`Hello::check`]) and answers
//! [`PeerFrame::Welcome`] or [`PeerFrame::Refused`] with the reason, and closes. After the
//! welcome the dialler sends only [`PeerFrame::Message`]s, each from itself to the
//! listener. Anything else closes the connection with a [`WireError`] naming what was
//! wrong, and changes nothing.
//!
//! [`NodeConfig::max_frame_bytes`]: crate::NodeConfig::max_frame_bytes

use std::io;

use bytes::Bytes;
use paxstore_paxos::Message;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{length_delimited::LengthDelimitedCodecError, LengthDelimitedCodec};

use crate::kv::Command;

/// The version of this protocol; a node refuses a peer that speaks another.
pub const PROTOCOL_VERSION: u32 = 1;

/// One frame between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerFrame {
    /// The dialler introduces itself.
    Hello(Hello),
    /// The listener accepts the connection.
    Welcome {
        /// The listener's node id.
        node: u64,
    },
    /// The listener refuses the connection, and why.
    Refused {
        /// What did not match.
        reason: String,
    },
    /// A message of the replicas.
    Message(Message<Command>),
}

/// The first frame of a connection: who dials whom, in which cluster and configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the dialler.
    pub protocol: u32,
    /// The cluster the dialler belongs to.
    pub cluster_id: u64,
    /// The dialler's configuration: its id and its sorted node ids.
    pub configuration_id: u32,
    /// The node ids of the dialler's configuration, sorted.
    pub nodes: Vec<u64>,
    /// The dialler.
    pub from: u64,
    /// The node the dialler means to reach.
    pub to: u64,
}

/// Why a [`Hello`] is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The dialler speaks another protocol version.
    #[error("protocol version {theirs}, this node speaks {ours}")]
    Protocol {
        /// This node's version.
        ours: u32,
        /// The dialler's.
        theirs: u32,
    },
    /// The dialler belongs to another cluster.
    #[error("cluster id {theirs}, this node is in cluster {ours}")]
    Cluster {
        /// This node's cluster.
        ours: u64,
        /// The dialler's.
        theirs: u64,
    },
    /// The dialler's id is not a node of this configuration (or is this node's own).
    #[error("node id {id} is not a peer of this node (nodes {nodes:?}, this node {me})")]
    UnknownNode {
        /// The id the dialler gave.
        id: u64,
        /// This configuration's nodes.
        nodes: Vec<u64>,
        /// This node.
        me: u64,
    },
    /// The dialler meant to reach another node.
    #[error("the dialler wants node {to}, this is node {me}")]
    WrongNode {
        /// The node the dialler asked for.
        to: u64,
        /// This node.
        me: u64,
    },
    /// The dialler's configuration differs from this node's.
    #[error("configuration {theirs_id} with nodes {theirs:?}, this node has configuration {ours_id} with nodes {ours:?}")]
    Configuration {
        /// This node's configuration id.
        ours_id: u32,
        /// This node's nodes.
        ours: Vec<u64>,
        /// The dialler's configuration id.
        theirs_id: u32,
        /// The dialler's nodes.
        theirs: Vec<u64>,
    },
}

impl Hello {
    /// Whether this hello, received by `expected.to`, may connect: every field must equal
    /// the hello the listener itself would send that peer (`expected.from` is ignored:
    /// the dialler may be any peer).
    pub fn check(&self, expected: &Hello) -> Result<(), HandshakeError> {
        if self.protocol != expected.protocol {
            return Err(HandshakeError::Protocol {
                ours: expected.protocol,
                theirs: self.protocol,
            });
        }
        if self.cluster_id != expected.cluster_id {
            return Err(HandshakeError::Cluster {
                ours: expected.cluster_id,
                theirs: self.cluster_id,
            });
        }
        let me = expected.to;
        if self.from == me || !expected.nodes.contains(&self.from) {
            return Err(HandshakeError::UnknownNode {
                id: self.from,
                nodes: expected.nodes.clone(),
                me,
            });
        }
        if self.to != me {
            return Err(HandshakeError::WrongNode { to: self.to, me });
        }
        if self.configuration_id != expected.configuration_id || self.nodes != expected.nodes {
            return Err(HandshakeError::Configuration {
                ours_id: expected.configuration_id,
                ours: expected.nodes.clone(),
                theirs_id: self.configuration_id,
                theirs: self.nodes.clone(),
            });
        }
        Ok(())
    }
}

/// Why a peer connection was closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A frame announced more bytes than the limit.
    #[error("frame longer than the limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A frame's bytes are not one [`PeerFrame`].
    #[error("undecodable frame of {len} bytes: {detail}")]
    Decode {
        /// The frame's length.
        len: usize,
        /// What postcard said, or how many bytes were left over.
        detail: String,
    },
    /// The hello was refused.
    #[error("handshake refused: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer refused our hello, saying why.
    #[error("the peer refused the connection: {0}")]
    RefusedByPeer(String),
    /// A frame of the wrong kind for this point of the connection.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// What the protocol allows here.
        expected: &'static str,
        /// What arrived.
        got: &'static str,
    },
    /// A message whose sender or receiver is not this connection's.
    #[error("a message from {from} to {to} on the connection from {peer} to {me}")]
    Misaddressed {
        /// The message's sender.
        from: u64,
        /// The message's receiver.
        to: u64,
        /// The dialler, as its hello said.
        peer: u64,
        /// This node.
        me: u64,
    },
    /// The peer closed the connection.
    #[error("the connection closed")]
    Closed,
    /// The peer did not finish the handshake in time.
    #[error("no handshake within {0:?}")]
    Timeout(std::time::Duration),
}

impl WireError {
    /// The error of a codec read, told apart: an oversized frame or a socket error.
    pub fn from_codec(err: io::Error, max: usize) -> Self {
        if err.get_ref().is_some_and(|e| e.is::<LengthDelimitedCodecError>()) {
            WireError::TooLarge { max }
        } else {
            WireError::Io(err)
        }
    }
}

impl PeerFrame {
    /// The frame's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerFrame::Hello(_) => "hello",
            PeerFrame::Welcome { .. } => "welcome",
            PeerFrame::Refused { .. } => "refused",
            PeerFrame::Message(_) => "message",
        }
    }

    /// The frame's bytes (without the length prefix).
    pub fn encode(&self) -> Result<Bytes, WireError> {
        postcard::to_stdvec(self)
            .map(Bytes::from)
            .map_err(|e| WireError::Decode { len: 0, detail: format!("encoding: {e}") })
    }

    /// The frame that fills `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<PeerFrame, WireError> {
        match postcard::take_from_bytes::<PeerFrame>(bytes) {
            Ok((frame, [])) => Ok(frame),
            Ok((_, rest)) => Err(WireError::Decode {
                len: bytes.len(),
                detail: format!("{} bytes after the frame", rest.len()),
            }),
            Err(e) => Err(WireError::Decode { len: bytes.len(), detail: e.to_string() }),
        }
    }
}

/// The length-delimited codec of peer connections, refusing frames over `max` bytes.
pub fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(max).new_codec()
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use paxstore::Ballot;
    use paxstore_paxos::messages::{AcceptDecide, BleMessage, PaxosMessage};
    use paxstore_paxos::Payload;
    use proptest::prelude::*;
    use tokio_util::codec::Decoder;

    use super::*;
    use crate::kv::{CommandId, KvOp};

    fn hello() -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            cluster_id: 7,
            configuration_id: 1,
            nodes: vec![1, 2, 3],
            from: 2,
            to: 1,
        }
    }

    #[test]
    fn a_matching_hello_passes_and_each_mismatch_is_named() {
        let expected = Hello { from: 0, ..hello() };
        assert_eq!(hello().check(&expected), Ok(()));
        let refuse = |h: Hello| h.check(&expected).unwrap_err();
        assert!(matches!(
            refuse(Hello { protocol: 9, ..hello() }),
            HandshakeError::Protocol { theirs: 9, .. }
        ));
        assert!(matches!(
            refuse(Hello { cluster_id: 8, ..hello() }),
            HandshakeError::Cluster { theirs: 8, .. }
        ));
        assert!(matches!(
            refuse(Hello { from: 4, ..hello() }),
            HandshakeError::UnknownNode { id: 4, .. }
        ));
        assert!(matches!(
            refuse(Hello { from: 1, ..hello() }),
            HandshakeError::UnknownNode { id: 1, .. }
        ));
        assert!(matches!(
            refuse(Hello { to: 3, ..hello() }),
            HandshakeError::WrongNode { to: 3, me: 1 }
        ));
        assert!(matches!(
            refuse(Hello { nodes: vec![1, 2, 3, 4], ..hello() }),
            HandshakeError::Configuration { .. }
        ));
        assert!(matches!(
            refuse(Hello { configuration_id: 2, ..hello() }),
            HandshakeError::Configuration { theirs_id: 2, .. }
        ));
    }

    #[test]
    fn frames_round_trip() {
        let cmd = Command {
            id: CommandId { node: 1, incarnation: 5, seq: 9 },
            op: KvOp::Put { key: "k".into(), value: "v".into() },
        };
        let n = Ballot::new(1, 2, 0, 1);
        let payloads: Vec<Payload<Command>> = vec![
            Payload::Ble(BleMessage::HeartbeatRequest { round: 3 }),
            Payload::Paxos(PaxosMessage::AcceptDecide(AcceptDecide {
                n,
                start_idx: 4,
                entries: vec![cmd.clone(), cmd],
                stopsign: None,
                decided_idx: 3,
            })),
        ];
        for payloads in [payloads.clone().into(), payloads[0].clone().into()] {
            let frame = PeerFrame::Message(Message { from: 1, to: 2, payloads });
            let bytes = frame.encode().unwrap();
            let back = PeerFrame::decode(&bytes).unwrap();
            assert_eq!(format!("{back:?}"), format!("{frame:?}"));
        }
        let frame = PeerFrame::Hello(hello());
        let bytes = frame.encode().unwrap();
        assert!(matches!(PeerFrame::decode(&bytes), Ok(PeerFrame::Hello(h)) if h == hello()));
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(matches!(PeerFrame::decode(&trailing), Err(WireError::Decode { .. })));
    }

    #[test]
    fn an_oversized_frame_is_a_typed_error() {
        let mut codec = codec(16);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 17][..]);
        buf.extend_from_slice(&[0; 17]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(WireError::from_codec(err, 16), WireError::TooLarge { max: 16 }));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PAXSTORE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2048)
        ))]
        /// Any bytes, as a frame body: a frame or a typed error, never a panic.
        #[test]
        fn garbage_frames_decode_to_typed_errors(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            match PeerFrame::decode(&bytes) {
                Ok(frame) => {
                    // Whatever decodes re-encodes to a frame that decodes the same way.
                    let again = frame.encode().unwrap();
                    prop_assert!(PeerFrame::decode(&again).is_ok());
                }
                Err(WireError::Decode { len, .. }) => prop_assert_eq!(len, bytes.len()),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        /// Any byte stream through the length-delimited codec and the decoder: frames or
        /// typed errors, never a panic.
        #[test]
        fn garbage_streams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut codec = codec(1024);
            let mut buf = BytesMut::from(&bytes[..]);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => { let _ = PeerFrame::decode(&frame); }
                    Ok(None) => break,
                    Err(e) => {
                        let typed = matches!(WireError::from_codec(e, 1024), WireError::TooLarge { .. });
                        prop_assert!(typed, "not a TooLarge error");
                        break;
                    }
                }
            }
        }

        /// A valid frame with bytes flipped: a frame or a typed error, never a panic.
        #[test]
        fn corrupted_messages_decode_to_typed_errors(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let frame = PeerFrame::Message(Message {
                from: 1,
                to: 2,
                payloads: Payload::Paxos(PaxosMessage::AcceptDecide(AcceptDecide {
                    n: Ballot::new(1, 2, 0, 1),
                    start_idx: 4,
                    entries: vec![Command {
                        id: CommandId { node: 1, incarnation: 5, seq: 9 },
                        op: KvOp::Cas { key: "k".into(), expected: Some("a".into()), new: "b".into() },
                    }],
                    stopsign: None,
                    decided_idx: 3,
                })).into(),
            });
            let mut bytes = frame.encode().unwrap().to_vec();
            for (at, b) in flips {
                let i = at % bytes.len();
                bytes[i] ^= b;
            }
            let typed = matches!(PeerFrame::decode(&bytes), Ok(_) | Err(WireError::Decode { .. }));
            prop_assert!(typed, "not a frame nor a decode error");
        }
    }
}
