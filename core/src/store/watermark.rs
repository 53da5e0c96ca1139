//! How far a store's writer thread has made submitted work durable: writers number what they
//! submit (tickets), the thread advances the watermark after each commit, and waiters — async
//! or blocking — wait until it covers their ticket. A failed writer raises it to "failed".

use crate::error::{CoreError, CoreResult};
use std::sync::{Condvar, Mutex, MutexGuard};
use tokio::sync::watch;

/// The watermark value that means "the writer failed".
const FAILED: u64 = u64::MAX;

/// Locks, ignoring poisoning (the stores keep no invariant a panic could break half-way).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
pub(crate) struct Watermark {
    what: &'static str,
    async_waiters: watch::Sender<u64>,
    blocking: Mutex<u64>,
    blocking_waiters: Condvar,
}

impl Watermark {
    /// A watermark at 0 for the store named `what` (used in errors).
    pub(crate) fn new(what: &'static str) -> Watermark {
        Watermark {
            what,
            async_waiters: watch::channel(0).0,
            blocking: Mutex::new(0),
            blocking_waiters: Condvar::new(),
        }
    }

    /// Everything up to `ticket` is durable. It never goes back (nor below "failed").
    pub(crate) fn advance(&self, ticket: u64) {
        self.async_waiters.send_if_modified(|d| {
            let raised = ticket > *d;
            *d = (*d).max(ticket);
            raised
        });
        let mut done = lock(&self.blocking);
        *done = (*done).max(ticket);
        drop(done);
        self.blocking_waiters.notify_all();
    }

    /// The writer failed: every waiter, now and later, gets an error.
    pub(crate) fn fail(&self) {
        self.advance(FAILED);
    }

    fn result(&self, reached: u64) -> CoreResult<()> {
        if reached == FAILED {
            return Err(CoreError::Internal(format!("the {} failed", self.what)));
        }
        Ok(())
    }

    /// Resolves once `ticket` is durable.
    pub(crate) async fn wait(&self, ticket: u64) -> CoreResult<()> {
        let mut rx = self.async_waiters.subscribe();
        let reached = rx.wait_for(|&d| d >= ticket).await.map_or(FAILED, |d| *d);
        self.result(reached)
    }

    /// Blocks until `ticket` is durable.
    pub(crate) fn wait_blocking(&self, ticket: u64) -> CoreResult<()> {
        let mut done = lock(&self.blocking);
        while *done < ticket {
            done = self
                .blocking_waiters
                .wait(done)
                .unwrap_or_else(|e| e.into_inner());
        }
        self.result(*done)
    }
}
