//! The outbound buffer every connection writes through: small frames are flattened into one
//! buffer, large bodies are kept as their own chunks and handed to `writev` without a copy.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Bodies at least this large are not copied into the flat buffer.
const COPY_LIMIT: usize = 4096;
/// Slices per `writev`.
const MAX_SLICES: usize = 64;

/// Coalesced outbound bytes.
#[derive(Debug, Default)]
pub struct WriteBuf {
    chunks: VecDeque<Bytes>,
    head: BytesMut,
    len: usize,
}

impl WriteBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        WriteBuf::default()
    }

    /// The flat buffer to encode small frames into. Call [`WriteBuf::commit`] after writing.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.head
    }

    /// Appends a body: copied when small, else queued as its own chunk.
    pub fn put_bytes(&mut self, b: &Bytes) {
        if b.len() < COPY_LIMIT {
            self.head.extend_from_slice(b);
        } else {
            self.seal();
            self.len += b.len();
            self.chunks.push_back(b.clone());
        }
    }

    fn seal(&mut self) {
        if !self.head.is_empty() {
            let h = self.head.split().freeze();
            self.len += h.len();
            self.chunks.push_back(h);
        }
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len + self.head.len()
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the bytes waiting, in order (for tests and diagnostics; no I/O).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in &self.chunks {
            v.extend_from_slice(c);
        }
        v.extend_from_slice(&self.head);
        v
    }

    /// Takes the bytes waiting, in order, as if they had been written (no I/O: for tests and
    /// the session harness).
    pub fn take_vec(&mut self) -> Vec<u8> {
        let v = self.to_vec();
        self.chunks.clear();
        self.head.clear();
        self.len = 0;
        v
    }

    /// Writes everything out, many chunks per system call.
    pub async fn write_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        w: &mut W,
    ) -> std::io::Result<()> {
        self.seal();
        while !self.chunks.is_empty() {
            // The slices live only inside one poll, never in the future's state.
            let n = std::future::poll_fn(|cx| {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let mut k = 0;
                for (slot, c) in slices.iter_mut().zip(self.chunks.iter()) {
                    *slot = IoSlice::new(c);
                    k += 1;
                }
                Pin::new(&mut *w).poll_write_vectored(cx, &slices[..k])
            })
            .await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.advance(n);
        }
        w.flush().await
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_order_across_small_and_large() {
        let mut wb = WriteBuf::new();
        wb.buf().extend_from_slice(b"head");
        let big = Bytes::from(vec![7u8; 10_000]);
        wb.put_bytes(&big);
        wb.put_bytes(&Bytes::from_static(b"tail"));
        assert_eq!(wb.len(), 4 + 10_000 + 4);
        let mut out = Vec::new();
        wb.write_to(&mut out).await.unwrap();
        assert_eq!(&out[..4], b"head");
        assert!(out[4..10_004].iter().all(|&b| b == 7));
        assert_eq!(&out[10_004..], b"tail");
        assert!(wb.is_empty());
    }
}
