//! The durable [`MessageStore`]: queues hand records to a pending batch without blocking; one
//! writer thread writes each batch to the [`SegmentLog`] and covers it with one `fdatasync`
//! (group commit). A message settled before its batch was written is never written at all, and
//! a sync resolves as soon as every append before it is either durable or settled: a message a
//! consumer has already acknowledged has nothing left to lose (RabbitMQ confirms it the same way).

use super::record::PublishHead;
use super::segment_log::{Op, Recovered, RecoveryReport, SegmentLog};
use super::watermark::{lock, Watermark};
use crate::clock::unix_ms;
use crate::error::CoreResult;
use crate::message::Message;
use crate::spare::GiveBack;
use crate::storage::{MemoryWindow, MessageStore, StoredMessage};
use async_trait::async_trait;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
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
    /// Size at which a segment file is closed and a new one begun.
    pub segment_bytes: u64,
    /// When appended records are synced to disk.
    pub fsync: FsyncPolicy,
    /// How long an unsettled persistent message waits (gathering others) before its batch is
    /// written and synced (group commit window).
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
    /// fdatasync calls.
    pub fsyncs: AtomicU64,
    /// Batches written.
    pub batches: AtomicU64,
    /// Publish records written.
    pub published: AtomicU64,
    /// Messages settled before they were written (never reached the disk).
    pub elided: AtomicU64,
}

/// One record waiting in the open batch.
#[derive(Debug)]
struct Entry {
    at: Instant,
    /// The append's ticket (Publish records only).
    ticket: u64,
    bytes: usize,
    /// None once a Publish was settled before it was written.
    op: Option<Op>,
}

/// Records not yet handed to the writer, and how far appends are resolved (durable or settled).
#[derive(Debug, Default)]
struct Batch {
    entries: VecDeque<Entry>,
    /// Position of `entries[0]` among all records ever pushed.
    base: u64,
    /// Unwritten Publish records by (queue, seq): their position.
    publishes: HashMap<(u64, u64), u64>,
    /// Position of the oldest unsettled Publish in `entries` (or of the end).
    scan: u64,
    bytes: usize,
    /// Appends so far (the ticket of the latest one).
    ticket: u64,
    /// The ticket of the latest append handed to the writer, and the latest it made durable.
    taken: u64,
    written: u64,
    /// Every append up to this ticket is durable or settled.
    resolved: u64,
    /// Tickets syncs wait for (smallest first); the watermark is advanced when one is reached.
    waiting: BinaryHeap<Reverse<u64>>,
    failed: bool,
    shutdown: bool,
}

impl Batch {
    /// The entry at `pos` (None: taken already, or past the end).
    fn entry(&self, pos: u64) -> Option<&Entry> {
        self.entries.get(pos.checked_sub(self.base)? as usize)
    }

    fn entry_mut(&mut self, pos: u64) -> &mut Entry {
        &mut self.entries[(pos - self.base) as usize]
    }

    /// Moves `scan` past settled Publishes and other records.
    fn advance_scan(&mut self) {
        self.scan = self.scan.max(self.base);
        while let Some(e) = self.entry(self.scan) {
            if matches!(e.op, Some(Op::Publish { .. })) {
                break;
            }
            self.scan += 1;
        }
    }

    /// The ticket below which every append is durable or settled. While the writer has a batch,
    /// that is what it last made durable; otherwise everything before the oldest unsettled
    /// Publish of the open batch.
    fn level(&self) -> u64 {
        if self.written < self.taken {
            return self.written;
        }
        match self.entry(self.scan) {
            Some(e) => e.ticket - 1,
            None => self.ticket,
        }
    }

    /// Raises `resolved` to the current level and wakes the syncs it reaches.
    fn resolve(&mut self, durable: &Watermark) {
        let level = self.level();
        if level <= self.resolved {
            return;
        }
        self.resolved = level;
        let mut reached = false;
        while self.waiting.peek().is_some_and(|w| w.0 <= level) {
            self.waiting.pop();
            reached = true;
        }
        if reached {
            durable.advance(level);
        }
    }

    /// Cancels the unwritten Publish at `pos` (settled or its queue dropped).
    fn cancel(&mut self, pos: u64) {
        self.entry_mut(pos).op = None;
    }

    /// Hands the first `n` entries to the writer.
    fn take(&mut self, n: usize) -> Vec<Entry> {
        let taken: Vec<Entry> = self.entries.drain(..n).collect();
        self.entries.give_back();
        self.publishes.give_back();
        self.base += n as u64;
        self.bytes -= taken.iter().map(|e| e.bytes).sum::<usize>();
        self.advance_scan();
        taken
    }
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
    /// Memory is short: queues page transient messages beyond their window out too.
    transient_paging: std::sync::atomic::AtomicBool,
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
                transient_paging: std::sync::atomic::AtomicBool::new(false),
            },
            report,
        ))
    }

    /// What the log has done so far.
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
        let (bytes, ticket) = match &op {
            Op::Publish {
                queue,
                seq,
                message,
                ..
            } => {
                b.ticket += 1;
                let pos = b.base + b.entries.len() as u64;
                b.publishes.insert((*queue, *seq), pos);
                (message.body.len() + 64, b.ticket)
            }
            _ => (32, 0),
        };
        let first = b.entries.is_empty();
        b.bytes += bytes;
        b.entries.push_back(Entry {
            at: Instant::now(),
            ticket,
            bytes,
            op: Some(op),
        });
        b.advance_scan();
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
        if let Some(&pos) = b.publishes.get(&(queue, seq)) {
            if let Some(Op::Publish { head, .. }) = &mut b.entry_mut(pos).op {
                head.redelivered = true;
            }
            return;
        }
        drop(b);
        self.push(Op::Delivered { queue, seq });
    }

    fn settle(&self, queue: u64, seq: u64) {
        let mut b = lock(&self.shared.batch);
        if let Some(pos) = b.publishes.remove(&(queue, seq)) {
            b.cancel(pos);
            self.shared.stats.elided.fetch_add(1, Ordering::Relaxed);
            if pos == b.scan {
                b.advance_scan();
                b.resolve(&self.shared.durable);
            }
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
            if let Some(pos) = b.publishes.remove(&k) {
                b.cancel(pos);
            }
        }
        b.advance_scan();
        b.resolve(&self.shared.durable);
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
            let pending = b.publishes.get(&(queue, seq));
            match pending.and_then(|&pos| b.entry(pos)?.op.as_ref()) {
                Some(Op::Publish { message, .. }) => out[i] = Some(message.clone()),
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

    fn transient_paging(&self) -> bool {
        self.transient_paging.load(Ordering::Relaxed)
    }

    fn set_transient_paging(&self, on: bool) {
        self.transient_paging.store(on, Ordering::Relaxed);
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
            "dropped stored messages of queues that no longer exist (or transient messages paged out before the restart)"
        );
        for (q, _) in orphans {
            self.push(Op::DropQueue { queue: q });
        }
    }

    async fn sync(&self) -> CoreResult<()> {
        let target = {
            let mut b = lock(&self.shared.batch);
            if !b.failed && b.resolved >= b.ticket {
                return Ok(());
            }
            let target = b.ticket;
            b.waiting.push(Reverse(target));
            target
        };
        self.shared.durable.wait(target).await
    }
}

/// Records the writer takes: the whole open batch (with the ticket it covers), or a prefix of
/// settled Publishes and marks that nobody waits for.
type Taken<'a> = (Vec<Entry>, Option<u64>, MutexGuard<'a, SegmentLog>);

/// Takes the next records to write. The open batch is taken whole once its oldest unsettled
/// Publish has waited the commit window (or it is full, or at shutdown); before that, records
/// older than the window that precede every unsettled Publish are taken on their own, so the
/// batch does not grow while consumers keep up. None at shutdown with nothing left.
fn next_batch(shared: &Shared) -> Option<Taken<'_>> {
    let opts = &shared.options;
    let window = opts.commit_window;
    let mut b = lock(&shared.batch);
    let (n, ticket) = loop {
        let Some(front) = b.entries.front().map(|e| e.at) else {
            if b.shutdown {
                return None;
            }
            let (g, _) = shared
                .wake
                .wait_timeout(b, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner());
            b = g;
            if b.entries.is_empty() {
                drop(b);
                idle_reclaim(shared);
                b = lock(&shared.batch);
            }
            continue;
        };
        let now = Instant::now();
        let aged = |at: Instant| now.saturating_duration_since(at) >= window;
        let unsettled = b.entry(b.scan).map(|e| e.at);
        if b.shutdown || b.bytes >= opts.max_batch_bytes || unsettled.is_some_and(aged) {
            // Everything: the writer now covers every ticket so far.
            b.publishes.clear();
            b.taken = b.ticket;
            break (b.entries.len(), Some(b.ticket));
        }
        if aged(front) {
            // The front is not the unsettled Publish (that one has not aged): all settled.
            break ((b.scan - b.base) as usize, None);
        }
        let (g, _) = shared
            .wake
            .wait_timeout(b, window - now.saturating_duration_since(front))
            .unwrap_or_else(|e| e.into_inner());
        b = g;
    };
    let entries = b.take(n);
    // The log is taken before the batch is let go, so a reader that misses a record in the
    // batch finds it in the log.
    let log = lock(&shared.log);
    drop(b);
    Some((entries, ticket, log))
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
    while let Some((entries, ticket, log)) = next_batch(shared) {
        let ops: Vec<Op> = entries.into_iter().filter_map(|e| e.op).collect();
        // Only settled Publishes: nothing to write.
        let result = if ops.is_empty() {
            Ok(())
        } else {
            write_batch(shared, log, &ops, &mut batches_since_reclaim)
        };
        match result {
            Ok(()) => {
                if let Some(ticket) = ticket {
                    let mut b = lock(&shared.batch);
                    b.written = ticket;
                    b.resolve(&shared.durable);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "message log write failed; persistent messages are no longer acknowledged");
                lock(&shared.batch).failed = true;
                shared.durable.fail();
                return;
            }
        }
    }
    if let Err(e) = lock(&shared.log).sync() {
        tracing::error!(error = %e, "message log final sync failed");
    }
}

/// Writes `ops` and syncs them (the log is let go before the sync).
fn write_batch(
    shared: &Shared,
    mut log: MutexGuard<'_, SegmentLog>,
    ops: &[Op],
    batches_since_reclaim: &mut u32,
) -> io::Result<()> {
    let published = ops
        .iter()
        .filter(|o| matches!(o, Op::Publish { .. }))
        .count();
    shared.stats.batches.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .published
        .fetch_add(published as u64, Ordering::Relaxed);
    let needs_sync = log.write(ops)?;
    let handle = log.sync_handle()?;
    *batches_since_reclaim += 1;
    if *batches_since_reclaim >= 64 {
        *batches_since_reclaim = 0;
        log.reclaim()?;
    }
    drop(log);
    if needs_sync && shared.options.fsync == FsyncPolicy::Always {
        handle.sync_data()?;
        shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
