//! A bare AMQP client over a raw socket, for sending what well-behaved client libraries never
//! send (bad frames, oversized frames, silence).

use bytes::BytesMut;
use junction_amqp::codec::{self, Frame, Method};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw connection that has done the handshake (guest/guest, vhost `/`).
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
}

fn plain(user: &str, pass: &str) -> bytes::Bytes {
    bytes::Bytes::from(format!("\0{user}\0{pass}"))
}

impl RawClient {
    /// Connects and completes start/tune/open with the given heartbeat (PLAIN, guest/guest).
    pub async fn connect(addr: SocketAddr, heartbeat: u16) -> RawClient {
        Self::connect_with(addr, heartbeat, "PLAIN", plain("guest", "guest")).await
    }

    /// Connects with the given SASL mechanism and response.
    pub async fn connect_with(
        addr: SocketAddr,
        heartbeat: u16,
        mechanism: &str,
        response: bytes::Bytes,
    ) -> RawClient {
        match Self::try_connect_with(addr, heartbeat, mechanism, response).await {
            Ok(c) => c,
            Err(m) => panic!("handshake refused: {m:?}"),
        }
    }

    /// Connects as guest announcing `client_properties` (e.g. capabilities).
    pub async fn connect_announcing(
        addr: SocketAddr,
        client_properties: junction_core::FieldTable,
    ) -> RawClient {
        match Self::handshake(addr, 0, "PLAIN", plain("guest", "guest"), client_properties).await {
            Ok(c) => c,
            Err(m) => panic!("handshake refused: {m:?}"),
        }
    }

    /// Like [`RawClient::connect_with`], returning the server's refusal instead of panicking.
    pub async fn try_connect_with(
        addr: SocketAddr,
        heartbeat: u16,
        mechanism: &str,
        response: bytes::Bytes,
    ) -> Result<RawClient, Method> {
        Self::handshake(addr, heartbeat, mechanism, response, Default::default()).await
    }

    /// Connects as `user` to `vhost` (PLAIN, no heartbeat).
    pub async fn connect_as(addr: SocketAddr, user: &str, pass: &str, vhost: &str) -> RawClient {
        match Self::handshake_to(
            addr,
            0,
            "PLAIN",
            plain(user, pass),
            Default::default(),
            vhost,
        )
        .await
        {
            Ok(c) => c,
            Err(m) => panic!("handshake refused: {m:?}"),
        }
    }

    async fn handshake(
        addr: SocketAddr,
        heartbeat: u16,
        mechanism: &str,
        response: bytes::Bytes,
        client_properties: junction_core::FieldTable,
    ) -> Result<RawClient, Method> {
        Self::handshake_to(addr, heartbeat, mechanism, response, client_properties, "/").await
    }

    async fn handshake_to(
        addr: SocketAddr,
        heartbeat: u16,
        mechanism: &str,
        response: bytes::Bytes,
        client_properties: junction_core::FieldTable,
        vhost: &str,
    ) -> Result<RawClient, Method> {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(codec::PROTOCOL_HEADER).await.unwrap();
        let mut c = RawClient {
            stream,
            buf: BytesMut::new(),
        };
        let start = c.recv().await.expect("start");
        assert!(matches!(
            start,
            Frame::Method {
                method: Method::ConnectionStart { .. },
                ..
            }
        ));
        c.send_method(
            0,
            &Method::ConnectionStartOk {
                client_properties,
                mechanism: mechanism.into(),
                response,
                locale: "en_US".into(),
            },
        )
        .await;
        let tune = c.recv().await.expect("tune");
        let Frame::Method {
            method:
                Method::ConnectionTune {
                    channel_max,
                    frame_max,
                    ..
                },
            ..
        } = tune
        else {
            let Frame::Method { method, .. } = tune else {
                panic!("expected a method, got {tune:?}")
            };
            return Err(method);
        };
        c.send_method(
            0,
            &Method::ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat,
            },
        )
        .await;
        c.send_method(
            0,
            &Method::ConnectionOpen {
                virtual_host: vhost.into(),
            },
        )
        .await;
        let ok = c.recv().await.expect("open-ok");
        match ok {
            Frame::Method {
                method: Method::ConnectionOpenOk,
                ..
            } => Ok(c),
            Frame::Method { method, .. } => Err(method),
            other => panic!("expected open-ok, got {other:?}"),
        }
    }

    /// Sends a method frame.
    pub async fn send_method(&mut self, channel: u16, m: &Method) {
        let mut out = BytesMut::new();
        codec::encode_method_frame(channel, m, &mut out);
        self.send_raw(&out).await;
    }

    /// Publishes `body` (default properties) in one write.
    pub async fn publish(&mut self, ch: u16, exchange: &str, key: &str, body: &[u8]) {
        self.publish_with(ch, exchange, key, &Default::default(), body)
            .await
    }

    /// Publishes `body` with `props` in one write.
    pub async fn publish_with(
        &mut self,
        ch: u16,
        exchange: &str,
        key: &str,
        props: &junction_core::Properties,
        body: &[u8],
    ) {
        let mut out = junction_core::runtime::WriteBuf::new();
        codec::encode_method_frame(
            ch,
            &Method::BasicPublish {
                exchange: exchange.into(),
                routing_key: key.into(),
                mandatory: false,
                immediate: false,
            },
            out.buf(),
        );
        let body = bytes::Bytes::copy_from_slice(body);
        codec::encode_content(ch, 60, props, &body, 131_072, &mut out);
        out.write_to(&mut self.stream).await.expect("write");
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next frame, or `None` when the server closed the socket.
    pub async fn recv(&mut self) -> Option<Frame> {
        let limits = codec::Limits {
            frame_max: 16 * 1024 * 1024,
            table_depth: 16,
        };
        loop {
            if let Some(f) = codec::decode(&mut self.buf, &limits).expect("server frames decode") {
                return Some(f);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Opens channel `ch` and checks the broker's channel.open-ok.
    pub async fn open_channel(&mut self, ch: u16) {
        self.send_method(ch, &Method::ChannelOpen).await;
        match crate::within(self.recv_method()).await {
            Some((c, Method::ChannelOpenOk)) if c == ch => {}
            other => panic!("expected channel.open-ok on {ch}, got {other:?}"),
        }
    }

    /// The next method frame, skipping heartbeats.
    pub async fn recv_method(&mut self) -> Option<(u16, Method)> {
        loop {
            match self.recv().await? {
                Frame::Method { channel, method } => return Some((channel, method)),
                Frame::Heartbeat => continue,
                other => panic!("expected a method, got {other:?}"),
            }
        }
    }
}
