//! A bare MQTT connection over a real socket, for what client libraries never send.

use bytes::BytesMut;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw MQTT socket.
pub struct RawMqtt {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
}

impl RawMqtt {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> RawMqtt {
        RawMqtt {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    /// Sends bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends a v4 CONNECT (clean session) with the given client id and keep-alive.
    pub async fn connect_v4(&mut self, client_id: &str, keep_alive: u16) -> mqttbytes::v4::ConnAck {
        let mut c = mqttbytes::v4::Connect::new(client_id);
        c.keep_alive = keep_alive;
        let mut out = BytesMut::new();
        c.write(&mut out).unwrap();
        self.send(&out).await;
        match self.recv_v4().await {
            Some(mqttbytes::v4::Packet::ConnAck(a)) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Subscribes (v4, QoS 0) to `filter` and waits for the SUBACK.
    pub async fn subscribe_v4(&mut self, filter: &str) {
        let mut out = BytesMut::new();
        let mut s = mqttbytes::v4::Subscribe::new(filter, mqttbytes::QoS::AtMostOnce);
        // A packet id of 0 is a protocol violation (§2.3.1): the broker would close.
        s.pkid = 1;
        s.write(&mut out).unwrap();
        self.send(&out).await;
        match self.recv_v4().await {
            Some(mqttbytes::v4::Packet::SubAck(_)) => {}
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Sends a v5 CONNECT (clean start) and returns the CONNACK.
    pub async fn connect_v5(&mut self, client_id: &str) -> mqttbytes::v5::ConnAck {
        let c = mqttbytes::v5::Connect::new(client_id);
        let mut out = BytesMut::new();
        c.write(&mut out).unwrap();
        self.send(&out).await;
        match self.recv_v5().await {
            Some(mqttbytes::v5::Packet::ConnAck(a)) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn fill(&mut self) -> bool {
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// The next 3.1.1 packet, or `None` once the server closed the socket.
    pub async fn recv_v4(&mut self) -> Option<mqttbytes::v4::Packet> {
        loop {
            match mqttbytes::v4::read(&mut self.buf, 1 << 24) {
                Ok(p) => return Some(p),
                Err(mqttbytes::Error::InsufficientBytes(_)) => {
                    if !self.fill().await {
                        return None;
                    }
                }
                Err(e) => panic!("bad packet from server: {e:?}"),
            }
        }
    }

    /// The next 5.0 packet, or `None` once the server closed the socket.
    pub async fn recv_v5(&mut self) -> Option<mqttbytes::v5::Packet> {
        loop {
            match mqttbytes::v5::read(&mut self.buf, 1 << 24) {
                Ok(p) => return Some(p),
                Err(mqttbytes::Error::InsufficientBytes(_)) => {
                    if !self.fill().await {
                        return None;
                    }
                }
                Err(e) => panic!("bad packet from server: {e:?}"),
            }
        }
    }

    /// Reads raw bytes until the server closes; returns them.
    pub async fn rest(&mut self) -> Vec<u8> {
        let mut all = self.buf.split().to_vec();
        let _ = self.stream.read_to_end(&mut all).await;
        all
    }
}
