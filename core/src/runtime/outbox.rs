//! What every session keeps for the way out: the write buffer, the acknowledgements held until
//! the stores have synced, and when it last sent. The driver's [`Session`] trait reads and
//! drives it through [`Session::outbox`], so the sessions do not each write that plumbing.
//!
//! [`Session`]: super::driver::Session
//! [`Session::outbox`]: super::driver::Session::outbox

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

/// Acknowledgements held until the stores have synced, in the order they were made. A sync runs
/// while the connection goes on reading; acknowledgements made meanwhile wait for the next one.
#[derive(Debug)]
pub struct Held<T> {
    items: Vec<T>,
    /// Items covered by the sync in flight.
    covered: usize,
    /// A sync is wanted even with nothing held (state that must be durable first).
    wanted: bool,
    in_flight: bool,
    /// The position in `items` of a reply that bars further input until it is released: a
    /// metadata change is answered only once durable, and nothing the client sends after it
    /// may be answered first.
    barrier: Option<usize>,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held {
            items: Vec::new(),
            covered: 0,
            wanted: false,
            in_flight: false,
            barrier: None,
        }
    }
}

impl<T> Held<T> {
    /// Holds `item` until a sync started after now has finished.
    pub fn hold(&mut self, item: T) {
        self.items.push(item);
    }

    /// Holds `item` like [`Held::hold`] and takes no more input until it is released (see
    /// [`Held::input_barred`]).
    pub fn hold_barrier(&mut self, item: T) {
        self.items.push(item);
        self.barrier = Some(self.items.len() - 1);
    }

    /// True while a reply held by [`Held::hold_barrier`] waits for its sync: the session
    /// handles no further input until then ([`Session::input_paused`](super::driver::Session::input_paused)).
    pub fn input_barred(&self) -> bool {
        self.barrier.is_some()
    }

    /// Asks for a sync with nothing to release (e.g. session state written to the store).
    pub fn want_sync(&mut self) {
        self.wanted = true;
    }

    /// True when a new acknowledgement must queue behind held ones to keep the order.
    pub fn is_holding(&self) -> bool {
        !self.items.is_empty() || self.wanted || self.in_flight
    }

    /// Something waits for a sync not yet started.
    pub fn needs_sync(&self) -> bool {
        self.wanted || self.items.len() > self.covered
    }

    /// A sync covering everything held so far has started.
    pub fn sync_started(&mut self) {
        self.covered = self.items.len();
        self.wanted = false;
        self.in_flight = true;
    }

    /// The items the finished sync covered, oldest first.
    pub fn synced(&mut self) -> std::vec::Drain<'_, T> {
        self.in_flight = false;
        let n = std::mem::take(&mut self.covered);
        self.barrier = self.barrier.and_then(|b| b.checked_sub(n));
        self.items.drain(..n)
    }
}
