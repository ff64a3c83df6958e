//! Bad input from peers and clients: each bad frame or request is refused with a typed,
//! logged reason and changes nothing; the cluster keeps serving. Three nodes run in this
//! process over the memory backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hyper::Method;
use paxstore_backends::BackendKind;
use paxstore_node::api::{ErrorBody, ErrorKind};
use paxstore_node::local::free_ports;
use paxstore_node::wire::{Hello, PeerFrame, PROTOCOL_VERSION};
use paxstore_node::{ClientError, KvClient, Node, NodeAddr, NodeConfig};
use paxstore_paxos::messages::BleMessage;
use paxstore_paxos::{Message, Payload};

/// Everything the nodes log, to check that each refusal is logged with its reason.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        self.0.lock().map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

async fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; logs:\n{}",
            logs().text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_cluster(cluster_id: u64) -> (Vec<Node>, Vec<NodeAddr>, tempfile::TempDir) {
    let ports = free_ports(6).unwrap();
    let nodes: Vec<NodeAddr> = (0..3)
        .map(|i| NodeAddr {
            id: i as u64 + 1,
            peer: ([127, 0, 0, 1], ports[i]).into(),
            api: Some(([127, 0, 0, 1], ports[i + 3]).into()),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut running = Vec::new();
    for n in &nodes {
        let mut config = NodeConfig::new(
            n.id,
            nodes.clone(),
            BackendKind::Memory,
            dir.path().join(n.id.to_string()),
        );
        config.cluster_id = cluster_id;
        config.max_frame_bytes = 64 * 1024;
        config.request_timeout = Duration::from_secs(2);
        running.push(Node::start(config).await.unwrap());
    }
    (running, nodes, dir)
}

/// Writes `frames` (raw bytes) to `addr` and reads until the node closes the
/// connection; returns what it sent back.
fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    // A close (EOF or reset) ends the read; a timeout fails the test below.
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn framed(frame: &PeerFrame) -> Vec<u8> {
    let body = frame.encode().unwrap();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn hello(from: u64, to: u64, cluster_id: u64) -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id,
        configuration_id: 1,
        nodes: vec![1, 2, 3],
        from,
        to,
    }
}

/// Decodes the frames a node sent back.
fn frames(mut bytes: &[u8]) -> Vec<PeerFrame> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        out.push(PeerFrame::decode(&bytes[4..4 + len]).unwrap());
        bytes = &bytes[4 + len..];
    }
    out
}

async fn works(api: &str) {
    let mut c = KvClient::new(api, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.put("alive", "yes").await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "the cluster stopped serving: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A read goes through the log too: on a loaded machine it can time out (504, outcome
    // unknown) like a put, so it is retried within the same deadline.
    loop {
        match c.get("alive").await {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("yes"));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "the cluster stopped serving: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peer_frames_close_their_connection_and_change_nothing() {
    let logs = logs();
    let (nodes, addrs, _dir) = start_cluster(7).await;
    let api = addrs[0].api.unwrap().to_string();
    works(&api).await;
    let peer = addrs[0].peer;
    let before = KvClient::new(&api, Duration::from_secs(5)).status().await.unwrap();

    // Garbage, a length over the limit, a non-hello first frame.
    let garbage = tokio::task::spawn_blocking(move || {
        exchange(peer, &[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb])
    });
    assert!(garbage.await.unwrap().is_empty());
    wait_for(Duration::from_secs(5), "the garbage frame's reason", || {
        logs.text().contains("undecodable frame of 5 bytes")
    })
    .await;
    let huge =
        tokio::task::spawn_blocking(move || exchange(peer, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    assert!(huge.await.unwrap().is_empty());
    wait_for(Duration::from_secs(5), "the oversized frame's reason", || {
        logs.text().contains("frame longer than the limit of 65536 bytes")
    })
    .await;
    let not_hello = framed(&PeerFrame::Welcome { node: 2 });
    let reply = tokio::task::spawn_blocking(move || exchange(peer, &not_hello));
    assert!(reply.await.unwrap().is_empty());
    wait_for(Duration::from_secs(5), "the wrong first frame's reason", || {
        logs.text().contains("expected hello, got welcome")
    })
    .await;

    // Hellos that do not match: refused, with the reason sent back and logged.
    for (h, reason) in [
        (hello(9, 1, 7), "node id 9 is not a peer of this node"),
        (hello(2, 1, 8), "cluster id 8, this node is in cluster 7"),
        (hello(2, 3, 7), "the dialler wants node 3, this is node 1"),
        (Hello { nodes: vec![1, 2, 3, 4], ..hello(2, 1, 7) }, "with nodes [1, 2, 3, 4]"),
        (Hello { protocol: 99, ..hello(2, 1, 7) }, "protocol version 99"),
    ] {
        let bytes = framed(&PeerFrame::Hello(h));
        let back = tokio::task::spawn_blocking(move || exchange(peer, &bytes)).await.unwrap();
        match frames(&back).as_slice() {
            [PeerFrame::Refused { reason: r }] => assert!(r.contains(reason), "{r}"),
            other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
        }
        wait_for(Duration::from_secs(5), reason, || logs.text().contains(reason)).await;
    }

    // A good hello, then a message that claims another sender: welcomed, then closed.
    let mut bytes = framed(&PeerFrame::Hello(hello(2, 1, 7)));
    let spoofed = Message::<paxstore_node::kv::Command> {
        from: 3,
        to: 1,
        payloads: Payload::Ble(BleMessage::HeartbeatRequest { round: 1 }).into(),
    };
    bytes.extend(framed(&PeerFrame::Message(spoofed)));
    let back = tokio::task::spawn_blocking(move || exchange(peer, &bytes)).await.unwrap();
    assert!(matches!(frames(&back).as_slice(), [PeerFrame::Welcome { node: 1 }]));
    wait_for(Duration::from_secs(5), "the misaddressed message's reason", || {
        logs.text().contains("a message from 3 to 1 on the connection from 2 to 1")
    })
    .await;

    // Nothing changed: same round, and the cluster still serves.
    let after = KvClient::new(&api, Duration::from_secs(5)).status().await.unwrap();
    assert_eq!(after.round, before.round);
    assert_eq!(after.stopped, None);
    works(&api).await;
    for n in nodes {
        n.shutdown().await;
    }
}

fn api_error(r: Result<(u16, Vec<u8>), ClientError>) -> (u16, ErrorBody) {
    let (status, body) = r.unwrap();
    let body: ErrorBody = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not a JSON error ({e}): {}", String::from_utf8_lossy(&body)));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_requests_get_clear_errors() {
    logs();
    let (nodes, addrs, _dir) = start_cluster(1).await;
    let api = addrs[1].api.unwrap().to_string();
    works(&api).await;
    let mut c = KvClient::new(&api, Duration::from_secs(10));
    let cases: Vec<(Method, String, Vec<u8>, u16, &str)> = vec![
        (Method::PUT, "/v1/kv/k".into(), b"{not json".to_vec(), 400, "bad JSON body"),
        (
            Method::PUT,
            "/v1/kv/k".into(),
            br#"{"value":"v","extra":1}"#.to_vec(),
            400,
            "unknown field `extra`",
        ),
        (Method::PUT, "/v1/kv/k".into(), br#"{"value":7}"#.to_vec(), 400, "invalid type"),
        (
            Method::POST,
            "/v1/kv/k/cas".into(),
            br#"{"expected":null}"#.to_vec(),
            400,
            "missing field `new`",
        ),
        (
            Method::PUT,
            format!("/v1/kv/{}", "k".repeat(2000)),
            br#"{"value":"v"}"#.to_vec(),
            400,
            "the key is 2000 bytes",
        ),
        (
            Method::GET,
            "/v1/debug/log-digest?from=x".into(),
            Vec::new(),
            400,
            "expected ?from=A&to=B",
        ),
        (
            Method::GET,
            "/v1/debug/log-digest?from=5&to=1".into(),
            Vec::new(),
            400,
            "is not within the decided entries",
        ),
        (Method::GET, "/v1/nothing".into(), Vec::new(), 404, "no such route"),
        (Method::GET, "/v1/kv/".into(), Vec::new(), 404, "no such route"),
    ];
    for (method, path, body, code, words) in cases {
        let (status, err) = api_error(c.raw(method.clone(), &path, body).await);
        assert_eq!(status, code, "{method} {path}: {err:?}");
        assert!(err.error.contains(words), "{method} {path}: {:?} lacks {words:?}", err.error);
        assert!(matches!(err.kind, ErrorKind::BadRequest | ErrorKind::NotFound));
    }
    // A body over the limit: refused from its declared length, before it is read.
    let addr = addrs[1].api.unwrap();
    let mut big = b"PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3145728\r\nConnection: close\r\n\r\n".to_vec();
    big.extend_from_slice(&[b'x'; 65536]);
    let back = tokio::task::spawn_blocking(move || exchange(addr, &big)).await.unwrap();
    let text = String::from_utf8_lossy(&back);
    assert!(text.starts_with("HTTP/1.1 413") && text.contains("the body is over"), "{text}");
    // Not HTTP at all: the connection is closed (with a 400 from hyper, or nothing).
    let addr = addrs[1].api.unwrap();
    let back = tokio::task::spawn_blocking(move || exchange(addr, b"\x00\x01GARBAGE\r\n\r\n"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&back);
    assert!(back.is_empty() || text.starts_with("HTTP/1.1 400"), "{text}");
    // Nothing was applied by any of them, and the node still serves.
    assert_eq!(c.get("k").await.unwrap(), None);
    works(&api).await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_quorum_says_the_outcome_is_unknown_and_names_what_it_knows() {
    logs();
    let (mut nodes, addrs, _dir) = start_cluster(1).await;
    let api = addrs[0].api.unwrap().to_string();
    works(&api).await;
    // Node 1 alone: nothing can be decided.
    let n3 = nodes.pop().unwrap();
    let n2 = nodes.pop().unwrap();
    n3.shutdown().await;
    n2.shutdown().await;
    let mut c = KvClient::new(&api, Duration::from_secs(10));
    match c.put("k", "v").await {
        Err(e @ ClientError::Api { status: 504, .. }) => {
            assert!(e.may_have_taken_effect());
            let text = e.to_string();
            assert!(
                text.contains("not applied within 2s") && text.contains("may still take effect"),
                "{text}"
            );
            assert!(
                text.contains("leader is node") || text.contains("no leader is known"),
                "{text}"
            );
        }
        other => panic!("expected a 504 naming the leader it knows, got {other:?}"),
    }
    // A stopped node: the client says it cannot connect, and that nothing was sent.
    let stopped = addrs[1].api.unwrap().to_string();
    match KvClient::new(&stopped, Duration::from_secs(5)).put("k", "v").await {
        Err(e @ ClientError::Connect { .. }) => {
            assert!(!e.may_have_taken_effect());
            assert!(e.to_string().contains(&format!("cannot connect to node at {stopped}")), "{e}");
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    for n in nodes {
        n.shutdown().await;
    }
}
