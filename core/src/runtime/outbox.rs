//! What every session keeps for the way out: the write buffer, the acknowledgements held until
//! the stores have synced, and when it last sent. The driver's [`Session`] trait reads and
//! drives it through [`Session::outbox`], so the sessions do not each write that plumbing.
//!
//! [`Session`]: super::driver::Session
//! [`Session::outbox`]: super::driver::Session::outbox

use super::driver::Held;
use super::write_buf::WriteBuf;

/// A session's outbound side. `T` is what the session holds until a sync (a confirm, a
/// PUBACK, a receipt id).
#[derive(Debug)]
pub struct Outbox<T> {
    /// Bytes waiting to be written.
    pub out: WriteBuf,
    /// Acknowledgements waiting for the stores.
    pub held: Held<T>,
    /// When output was last written (ms since the connection started): heart-beats count
    /// from here.
    pub last_send: u64,
}

impl<T> Outbox<T> {
    /// An empty outbox at `now`.
    pub fn new(now: u64) -> Self {
        Outbox {
            out: WriteBuf::new(),
            held: Held::default(),
            last_send: now,
        }
    }
}
