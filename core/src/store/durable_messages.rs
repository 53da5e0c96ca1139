//! The durable [`MessageStore`]: queues hand records to a pending batch without blocking; one
//! writer thread writes each batch to the [`SegmentLog`] and covers it with one `fdatasync`
//! (group commit). A message settled before its batch was written is never written at all.

use super::record::PublishHead;
use super::segment_log::{Op, Recovered, RecoveryReport, SegmentLog};
use super::watermark::{lock, Watermark};
use crate::clock::unix_ms;
use crate::error::CoreResult;
use crate::message::Message;
use crate::storage::{MemoryWindow, MessageStore, StoredMessage};
use async_trait::async_trait;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When appended messages are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every batch is `fdatasync`ed before anything in it is acknowledged (the default).
    Always,
    /// Written to the OS but never synced: a power cut can lose acknowledged messages.
    NeverUnsafe,
}

/// How the message log behaves.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    /// How long a batch waits for more records before it is written (group commit window).
    pub commit_window: Duration,
    /// A batch this large is written at once.
    pub max_batch_bytes: usize,
    /// Ready persistent messages each durable queue keeps in memory; the rest is read back.
    pub memory_window: MemoryWindow,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 8 * 1024 * 1024,
            fsync: FsyncPolicy::Always,
            commit_window: Duration::from_millis(2),
            max_batch_bytes: 4 * 1024 * 1024,
            memory_window: MemoryWindow {
                messages: 4096,
                bytes: 16 * 1024 * 1024,
            },
        }
    }
}

/// Counters for logs and benchmarks.
#[derive(Debug, Default)]
pub struct LogStats {
    pub fsyncs: AtomicU64,
    pub batches: AtomicU64,
    pub published: AtomicU64,
    /// Messages settled before they were written (never reached the disk).
    pub elided: AtomicU64,
}

#[derive(Debug)]
enum Pending {
    Op(Op),
    /// A Publish settled before it was written.
    Cancelled,
}

#[derive(Debug, Default)]
struct Batch {
    ops: Vec<Pending>,
    /// Pending Publish records by (queue, seq): index into `ops`.
    publishes: HashMap<(u64, u64), usize>,
    bytes: usize,
    started: Option<Instant>,
    /// Appends so far (the ticket of the latest one).
    ticket: u64,
    shutdown: bool,
}

#[derive(Debug)]
struct Shared {
    batch: Mutex<Batch>,
    wake: Condvar,
    log: Mutex<SegmentLog>,
    /// Appends made durable so far.
    durable: Watermark,
    recovered: Mutex<Recovered>,
    options: LogOptions,
    stats: LogStats,
}

/// The message store of a data directory.
#[derive(Debug)]
pub struct DurableMessageStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl DurableMessageStore {
    /// Opens the log in `dir` (recovering it) and starts the writer thread.
    pub fn open(dir: &Path, options: LogOptions) -> io::Result<(Self, RecoveryReport)> {
        let (log, recovered, report) = SegmentLog::open(dir, options.segment_bytes)?;
        let shared = Arc::new(Shared {
            batch: Mutex::new(Batch::default()),
            wake: Condvar::new(),
            log: Mutex::new(log),
            durable: Watermark::new("message log"),
            recovered: Mutex::new(recovered),
            options,
            stats: LogStats::default(),
        });
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("junction-log".into())
            .spawn(move || writer_loop(&s))?;
        Ok((
            DurableMessageStore {
                shared,
                writer: Mutex::new(Some(writer)),
            },
            report,
        ))
    }

    pub fn stats(&self) -> &LogStats {
        &self.shared.stats
    }

    /// Writes what is pending, stops the writer and makes everything durable.
    pub fn close(&self) {
        lock(&self.shared.batch).shutdown = true;
        self.shared.wake.notify_all();
        if let Some(h) = lock(&self.writer).take() {
            let _ = h.join();
        }
    }

    fn push(&self, op: Op) {
        let mut b = lock(&self.shared.batch);
        if let Op::Publish {
            queue,
            seq,
            message,
            ..
        } = &op
        {
            b.bytes += message.body.len() + 64;
            b.ticket += 1;
            let at = b.ops.len();
            b.publishes.insert((*queue, *seq), at);
        } else {
            b.bytes += 32;
        }
        let first = b.ops.is_empty();
        if first {
            b.started = Some(Instant::now());
        }
        b.ops.push(Pending::Op(op));
        let full = b.bytes >= self.shared.options.max_batch_bytes;
        drop(b);
        if first || full {
            self.shared.wake.notify_one();
        }
    }

    /// Runs one reclaim pass now (tests; the writer does it on its own when idle).
    pub fn reclaim(&self) -> io::Result<super::segment_log::Reclaimed> {
        lock(&self.shared.log).reclaim()
    }

    /// Segment files and their total size.
    pub fn disk_usage(&self) -> (usize, u64) {
        let log = lock(&self.shared.log);
        (log.segment_count(), log.disk_bytes())
    }
}

impl Drop for DurableMessageStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl MessageStore for DurableMessageStore {
    fn append(&self, queue: u64, seq: u64, message: &Arc<Message>) {
        self.push(Op::Publish {
            queue,
            seq,
            head: PublishHead {
                redelivered: false,
                enqueued_at: unix_ms(),
            },
            message: message.clone(),
        });
    }

    fn mark_delivered(&self, queue: u64, seq: u64) {
        let mut b = lock(&self.shared.batch);
        if let Some(&i) = b.publishes.get(&(queue, seq)) {
            if let Pending::Op(Op::Publish { head, .. }) = &mut b.ops[i] {
                head.redelivered = true;
            }
            return;
        }
        drop(b);
        self.push(Op::Delivered { queue, seq });
    }

    fn settle(&self, queue: u64, seq: u64) {
        let mut b = lock(&self.shared.batch);
        if let Some(i) = b.publishes.remove(&(queue, seq)) {
            b.ops[i] = Pending::Cancelled;
            self.shared.stats.elided.fetch_add(1, Ordering::Relaxed);
            return;
        }
        drop(b);
        self.push(Op::Ack { queue, seq });
    }

    fn drop_queue(&self, queue: u64) {
        let mut b = lock(&self.shared.batch);
        let mine: Vec<(u64, u64)> = b
            .publishes
            .keys()
            .filter(|(q, _)| *q == queue)
            .copied()
            .collect();
        for k in mine {
            if let Some(i) = b.publishes.remove(&k) {
                b.ops[i] = Pending::Cancelled;
            }
        }
        drop(b);
        lock(&self.shared.recovered).remove(&queue);
        self.push(Op::DropQueue { queue });
    }

    fn load(&self, queue: u64) -> Vec<StoredMessage> {
        lock(&self.shared.recovered)
            .remove(&queue)
            .map(|m| {
                m.into_iter()
                    .map(|(seq, meta)| StoredMessage {
                        seq,
                        message: None,
                        redelivered: meta.redelivered,
                        priority: meta.priority,
                        enqueued_at: meta.enqueued_at,
                        ttl_ms: meta.ttl_ms,
                        body_size: meta.body_size,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn read(&self, queue: u64, seqs: &[u64]) -> Vec<Option<Arc<Message>>> {
        let mut out = vec![None; seqs.len()];
        let b = lock(&self.shared.batch);
        let mut missed = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            match b.publishes.get(&(queue, seq)).map(|&at| &b.ops[at]) {
                Some(Pending::Op(Op::Publish { message, .. })) => out[i] = Some(message.clone()),
                _ => missed.push(i),
            }
        }
        if missed.is_empty() {
            return out;
        }
        // The log is taken before the batch is let go: a record the writer has just taken
        // from the batch is in the log once the writer lets the log go.
        let log = lock(&self.shared.log);
        drop(b);
        let missed_seqs: Vec<u64> = missed.iter().map(|&i| seqs[i]).collect();
        match log.read_many(queue, &missed_seqs) {
            Ok(found) => {
                for (i, m) in missed.into_iter().zip(found) {
                    out[i] = m.map(Arc::new);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, queue, "reading messages back from the log failed")
            }
        }
        out
    }

    fn memory_window(&self) -> Option<MemoryWindow> {
        Some(self.shared.options.memory_window)
    }

    fn recovery_done(&self) {
        let orphans: Vec<(u64, usize)> = lock(&self.shared.recovered)
            .drain()
            .map(|(q, m)| (q, m.len()))
            .collect();
        if orphans.is_empty() {
            return;
        }
        let messages: usize = orphans.iter().map(|(_, n)| n).sum();
        tracing::warn!(
            queues = orphans.len(),
            messages,
            "dropped stored messages of queues that no longer exist"
        );
        for (q, _) in orphans {
            self.push(Op::DropQueue { queue: q });
        }
    }

    async fn sync(&self) -> CoreResult<()> {
        let target = lock(&self.shared.batch).ticket;
        self.shared.durable.wait(target).await
    }
}

/// Takes the next batch: waits for a first record, then up to the commit window for more.
/// Returns the ops and the ticket they cover, or None at shutdown with nothing left.
fn next_batch(shared: &Shared) -> Option<(Vec<Pending>, u64, MutexGuard<'_, SegmentLog>)> {
    let opts = &shared.options;
    let mut b = lock(&shared.batch);
    loop {
        if b.ops.is_empty() {
            if b.shutdown {
                return None;
            }
            let (g, _) = shared
                .wake
                .wait_timeout(b, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner());
            b = g;
            if b.ops.is_empty() {
                drop(b);
                idle_reclaim(shared);
                b = lock(&shared.batch);
            }
            continue;
        }
        let waited = b.started.map_or(Duration::ZERO, |t| t.elapsed());
        if b.shutdown || waited >= opts.commit_window || b.bytes >= opts.max_batch_bytes {
            break;
        }
        let (g, _) = shared
            .wake
            .wait_timeout(b, opts.commit_window - waited)
            .unwrap_or_else(|e| e.into_inner());
        b = g;
    }
    let ops = std::mem::take(&mut b.ops);
    b.publishes.clear();
    b.bytes = 0;
    b.started = None;
    let ticket = b.ticket;
    // The log is taken before the batch is let go, so a reader that misses a record in the
    // batch finds it in the log.
    let log = lock(&shared.log);
    drop(b);
    Some((ops, ticket, log))
}

fn idle_reclaim(shared: &Shared) {
    match lock(&shared.log).reclaim() {
        Ok(r) if r.deleted_segments > 0 || r.compacted_messages > 0 => {
            tracing::debug!(
                deleted_segments = r.deleted_segments,
                compacted = r.compacted_messages,
                "message log reclaimed space"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "message log reclaim failed"),
    }
}

fn writer_loop(shared: &Shared) {
    let mut batches_since_reclaim = 0u32;
    while let Some((pending, ticket, mut log)) = next_batch(shared) {
        let ops: Vec<Op> = pending
            .into_iter()
            .filter_map(|p| match p {
                Pending::Op(op) => Some(op),
                Pending::Cancelled => None,
            })
            .collect();
        let published = ops
            .iter()
            .filter(|o| matches!(o, Op::Publish { .. }))
            .count();
        let result = log.write(&ops).and_then(|needs_sync| {
            let handle = log.sync_handle()?;
            batches_since_reclaim += 1;
            if batches_since_reclaim >= 64 {
                batches_since_reclaim = 0;
                log.reclaim()?;
            }
            drop(log);
            if needs_sync && shared.options.fsync == FsyncPolicy::Always {
                handle.sync_data()?;
                shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .published
            .fetch_add(published as u64, Ordering::Relaxed);
        match result {
            Ok(()) => {
                shared.durable.advance(ticket);
            }
            Err(e) => {
                tracing::error!(error = %e, "message log write failed; persistent messages are no longer acknowledged");
                shared.durable.fail();
                return;
            }
        }
    }
    if let Err(e) = lock(&shared.log).sync() {
        tracing::error!(error = %e, "message log final sync failed");
    }
}
