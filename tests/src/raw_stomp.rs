//! A minimal STOMP client over a real socket, built on Junction's codec, for end-to-end tests.

use bytes::BytesMut;
use junction_core::runtime::WriteBuf;
use junction_stomp::codec::{self, Command, Decoded, Frame, Version};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A STOMP connection.
pub struct StompClient {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    /// The version negotiated.
    pub version: Version,
    /// Heart-beat EOLs seen so far.
    pub heartbeats: usize,
    /// Frames that arrived while a receipt was awaited, returned by the next `recv`s.
    early: std::collections::VecDeque<Frame>,
}

const LIMITS: codec::Limits = codec::Limits {
    max_headers: 10_000,
    max_header_length: 1 << 20,
    max_body: 64 << 20,
};

/// Builds a frame from a command and header pairs.
pub fn frame(command: Command, headers: &[(&str, &str)], body: &[u8]) -> Frame {
    Frame {
        command,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: bytes::Bytes::copy_from_slice(body),
    }
}

impl StompClient {
    /// Opens a socket without sending anything.
    pub async fn open(addr: SocketAddr) -> StompClient {
        StompClient {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            version: Version::V1_2,
            heartbeats: 0,
            early: Default::default(),
        }
    }

    /// Connects as guest with STOMP 1.2 and returns the client with the CONNECTED frame.
    pub async fn connect(addr: SocketAddr) -> (StompClient, Frame) {
        Self::connect_with(
            addr,
            &[
                ("accept-version", "1.2"),
                ("login", "guest"),
                ("passcode", "guest"),
            ],
        )
        .await
    }

    /// Sends CONNECT with `headers`; returns the client and the server's answer.
    pub async fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> (StompClient, Frame) {
        let mut c = Self::open(addr).await;
        c.send(&frame(Command::Connect, headers, b"")).await;
        let reply = c.recv().await.expect("a reply to CONNECT");
        if let Some(v) = reply.header("version").and_then(Version::parse) {
            if reply.command == Command::Connected {
                c.version = v;
            }
        }
        (c, reply)
    }

    /// Sends a frame.
    pub async fn send(&mut self, f: &Frame) {
        let mut wb = WriteBuf::new();
        codec::encode(f, self.version, &mut wb);
        wb.write_to(&mut self.stream).await.expect("write");
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next frame (heart-beats are counted and skipped); `None` once the server closed.
    pub async fn recv(&mut self) -> Option<Frame> {
        match self.early.pop_front() {
            Some(f) => Some(f),
            None => self.recv_wire().await,
        }
    }

    async fn recv_wire(&mut self) -> Option<Frame> {
        loop {
            match codec::decode(&mut self.buf, &LIMITS, self.version).expect("server frames decode")
            {
                Some(Decoded::Frame(f)) => return Some(f),
                Some(Decoded::HeartBeat) => {
                    self.heartbeats += 1;
                    continue;
                }
                None => {}
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Asserts that no frame arrives within `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Ok(Some(f)) = tokio::time::timeout(d, self.recv()).await {
            panic!("unexpected frame {f:?}");
        }
    }

    /// Sends `f` with a receipt header and waits for that RECEIPT. MESSAGE frames that arrive
    /// first (a persistent SEND's receipt waits for the disk, its delivery does not) are kept
    /// for the next `recv`.
    pub async fn send_with_receipt(&mut self, mut f: Frame, receipt: &str) {
        f.headers.push(("receipt".into(), receipt.into()));
        self.send(&f).await;
        loop {
            let r = self.recv_wire().await.expect("receipt");
            if r.command == Command::Message {
                self.early.push_back(r);
                continue;
            }
            assert_eq!(r.command, Command::Receipt, "{r:?}");
            assert_eq!(r.header("receipt-id"), Some(receipt));
            return;
        }
    }

    /// Subscribes and waits for the receipt (so later sends cannot race the subscription).
    pub async fn subscribe(&mut self, id: &str, destination: &str, extra: &[(&str, &str)]) {
        let mut headers = vec![("id", id), ("destination", destination)];
        headers.extend_from_slice(extra);
        let receipt = format!("sub-{id}");
        self.send_with_receipt(frame(Command::Subscribe, &headers, b""), &receipt)
            .await;
    }
}
