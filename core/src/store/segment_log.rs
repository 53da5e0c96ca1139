//! The message log: append-only segment files of records (see [`super::record`]), an index of
//! live messages, recovery, and space reclaiming.
//!
//! Space comes back only from the oldest segment: it is deleted once it holds no live message,
//! or compacted (its live messages written again at the end, then deleted) once it is mostly
//! dead. Deleting only from the front keeps every Ack and DropQueue record at least as long as
//! the Publish records they cancel, so replaying the files in order is always right.

use super::record::{self, Kind, PublishHead, PublishMeta, Read, SEGMENT_MAGIC};
use crate::clock::unix_ms;
use crate::message::Message;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A change to write to the log.
#[derive(Debug, Clone)]
pub enum Op {
    /// A message stored for a queue.
    Publish {
        /// The queue's id.
        queue: u64,
        /// The message's position in the queue.
        seq: u64,
        /// What recovery needs without the body.
        head: PublishHead,
        /// The message.
        message: Arc<Message>,
    },
    /// The message left the queue.
    Ack {
        /// The queue's id.
        queue: u64,
        /// The message's position in the queue.
        seq: u64,
    },
    /// The message was handed to a consumer.
    Delivered {
        /// The queue's id.
        queue: u64,
        /// The message's position in the queue.
        seq: u64,
    },
    /// Everything stored for a queue is forgotten.
    DropQueue {
        /// The queue's id.
        queue: u64,
    },
}

/// Where a live message's record is.
#[derive(Debug, Clone, Copy)]
struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
    redelivered: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct SegmentInfo {
    /// Live Publish records in this segment.
    live: u64,
    live_bytes: u64,
    /// File size.
    size: u64,
}

/// Messages recovered per queue id, by sequence: what a queue needs to hold each one without
/// its body (read back with [`SegmentLog::read`]).
pub type Recovered = HashMap<u64, BTreeMap<u64, PublishMeta>>;

/// Damage found and cut off at recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Truncation {
    /// The segment file.
    pub segment: u64,
    /// Where the damage begins.
    pub offset: u64,
    /// Bytes cut off.
    pub bytes: u64,
    /// Records lost (the damaged one and those readable after it).
    pub records: u64,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: usize,
    /// Records read.
    pub records: u64,
    /// Messages still in some queue.
    pub live_messages: u64,
    /// Damaged tails cut off.
    pub truncations: Vec<Truncation>,
    /// Damaged stretches skipped inside the log (not at the end of the last segment).
    pub skipped: Vec<Skipped>,
}

/// A damaged stretch of a segment that recovery skipped, resynchronising on the next valid
/// record: the records in it (at least one) are lost; those after it are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The segment file.
    pub segment: u64,
    /// Where the damaged stretch begins.
    pub offset: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// The copy of the damaged bytes, in `damaged/` beside the segments.
    pub copy: PathBuf,
}

/// The folder beside the segments that keeps copies of damaged stretches.
pub const DAMAGED_DIR: &str = "damaged";

/// What one [`SegmentLog::reclaim`] pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reclaimed {
    /// Segment files deleted whole.
    pub deleted_segments: usize,
    /// Live messages copied forward out of mostly-dead segments.
    pub compacted_messages: u64,
}

/// Neighbouring records are read back together up to this many bytes.
const READ_RUN_BYTES: u64 = 1 << 20;

/// Where every live message is, and how full each segment is.
#[derive(Debug, Default)]
struct Index {
    segments: BTreeMap<u64, SegmentInfo>,
    queues: HashMap<u64, BTreeMap<u64, Loc>>,
}

impl Index {
    fn get(&self, queue: u64, seq: u64) -> Option<&Loc> {
        self.queues.get(&queue).and_then(|q| q.get(&seq))
    }

    fn get_mut(&mut self, queue: u64, seq: u64) -> Option<&mut Loc> {
        self.queues.get_mut(&queue).and_then(|q| q.get_mut(&seq))
    }

    fn insert(&mut self, queue: u64, seq: u64, loc: Loc) {
        if let Some(old) = self.queues.entry(queue).or_default().insert(seq, loc) {
            self.unlive(old);
        }
        let s = self.segments.entry(loc.segment).or_default();
        s.live += 1;
        s.live_bytes += u64::from(loc.len);
    }

    fn unlive(&mut self, loc: Loc) {
        if let Some(s) = self.segments.get_mut(&loc.segment) {
            s.live = s.live.saturating_sub(1);
            s.live_bytes = s.live_bytes.saturating_sub(u64::from(loc.len));
        }
    }

    fn remove(&mut self, queue: u64, seq: u64) -> bool {
        let Some(q) = self.queues.get_mut(&queue) else {
            return false;
        };
        let Some(loc) = q.remove(&seq) else {
            return false;
        };
        if q.is_empty() {
            self.queues.remove(&queue);
        }
        self.unlive(loc);
        true
    }

    fn remove_queue(&mut self, queue: u64) -> bool {
        let Some(q) = self.queues.remove(&queue) else {
            return false;
        };
        for loc in q.into_values() {
            self.unlive(loc);
        }
        true
    }

    /// Applies a replayed record. False if a Publish record cannot be decoded.
    fn replay(
        &mut self,
        segment: u64,
        offset: u64,
        len: u32,
        rec: &record::Record<'_>,
        recovered: &mut Recovered,
    ) -> bool {
        match rec.kind {
            Kind::Publish => {
                let Some(meta) = record::decode_publish_meta(rec.payload) else {
                    return false;
                };
                let loc = Loc {
                    segment,
                    offset,
                    len,
                    redelivered: meta.redelivered,
                };
                self.insert(rec.queue, rec.seq, loc);
                recovered
                    .entry(rec.queue)
                    .or_default()
                    .insert(rec.seq, meta);
            }
            Kind::Ack => {
                self.remove(rec.queue, rec.seq);
                if let Some(q) = recovered.get_mut(&rec.queue) {
                    q.remove(&rec.seq);
                }
            }
            Kind::Delivered => {
                if let Some(loc) = self.get_mut(rec.queue, rec.seq) {
                    loc.redelivered = true;
                }
                if let Some(m) = recovered
                    .get_mut(&rec.queue)
                    .and_then(|q| q.get_mut(&rec.seq))
                {
                    m.redelivered = true;
                }
            }
            Kind::DropQueue => {
                self.remove_queue(rec.queue);
                recovered.remove(&rec.queue);
            }
        }
        true
    }

    /// Replays one segment file. A torn or damaged tail of the `last` segment is cut off;
    /// anywhere else a damaged stretch is skipped up to the next valid record (records are
    /// length-prefixed and CRC'd), its bytes copied into `damaged/` beside the log, and the file
    /// left as it is, so one flipped bit costs one record, not the rest of its segment.
    fn replay_segment(
        &mut self,
        path: &Path,
        id: u64,
        last: bool,
        recovered: &mut Recovered,
        report: &mut RecoveryReport,
    ) -> io::Result<()> {
        let data = fs::read(path)?;
        let magic = SEGMENT_MAGIC.len();
        if data.len() < magic || &data[..magic] != SEGMENT_MAGIC {
            if data.len() <= magic {
                // Created but never written (a crash right after the roll): start it afresh.
                return self.cut(path, id, &data, 0, 0, report);
            }
            // A damaged header: the records after it may still be whole.
            self.skipped(path, id, &data, 0, magic, report)?;
        }
        let mut pos = magic;
        while pos < data.len() {
            match record::read(&data[pos..]) {
                Read::Ok(rec, len) => {
                    if self.replay(id, pos as u64, len as u32, &rec, recovered) {
                        report.records += 1;
                    } else {
                        // Whole and CRC-valid but not decodable: that record alone is lost.
                        self.skipped(path, id, &data, pos, pos + len, report)?;
                    }
                    pos += len;
                }
                Read::Torn | Read::Corrupt { .. } => match resync(&data, pos) {
                    Some(next) => {
                        self.skipped(path, id, &data, pos, next, report)?;
                        pos = next;
                    }
                    None if last => return self.cut(path, id, &data, pos, 1, report),
                    None => {
                        self.skipped(path, id, &data, pos, data.len(), report)?;
                        break;
                    }
                },
            }
        }
        self.segments.entry(id).or_default().size = data.len() as u64;
        Ok(())
    }

    /// Cuts the last segment's tail off at `at` (a torn write: nothing valid follows).
    fn cut(
        &mut self,
        path: &Path,
        id: u64,
        data: &[u8],
        at: usize,
        records: u64,
        report: &mut RecoveryReport,
    ) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(at as u64)?;
        if at == 0 {
            f.write_all_at(SEGMENT_MAGIC, 0)?;
        }
        f.sync_all()?;
        self.segments.entry(id).or_default().size = (at as u64).max(SEGMENT_MAGIC.len() as u64);
        report.truncations.push(Truncation {
            segment: id,
            offset: at as u64,
            bytes: (data.len() - at) as u64,
            records: if data.len() > at { records } else { 0 },
        });
        Ok(())
    }

    /// Records a damaged stretch `data[from..to]` that recovery skipped, keeping a copy of its
    /// bytes in `damaged/` beside the segment (once: a later restart finds the same copy).
    fn skipped(
        &mut self,
        path: &Path,
        id: u64,
        data: &[u8],
        from: usize,
        to: usize,
        report: &mut RecoveryReport,
    ) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new(".")).join(DAMAGED_DIR);
        fs::create_dir_all(&dir)?;
        let copy = dir.join(format!("{id:020}-{from}.bin"));
        match OpenOptions::new().write(true).create_new(true).open(&copy) {
            Ok(mut f) => {
                f.write_all(&data[from..to])?;
                f.sync_all()?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        report.skipped.push(Skipped {
            segment: id,
            offset: from as u64,
            bytes: (to - from) as u64,
            copy,
        });
        Ok(())
    }
}

/// Where the next valid record starts after a damaged one at `at`: at its claimed end when a
/// valid record (or the file's end) is there, else at the first offset where a whole record
/// with a matching CRC reads. None when nothing valid follows.
fn resync(data: &[u8], at: usize) -> Option<usize> {
    let valid = |p: usize| matches!(record::read(&data[p..]), Read::Ok(..));
    if let Read::Corrupt { skip: Some(len) } = record::read(&data[at..]) {
        let end = at + len;
        if end < data.len() && valid(end) {
            return Some(end);
        }
    }
    (at + 1..data.len()).find(|&p| valid(p))
}

/// The segment files of one data directory.
#[derive(Debug)]
pub struct SegmentLog {
    dir: PathBuf,
    segment_bytes: u64,
    index: Index,
    active_id: u64,
    active: File,
    buf: Vec<u8>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name
            .strip_suffix(".seg")
            .and_then(|n| n.parse::<u64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl SegmentLog {
    /// Opens (or creates) the log in `dir`, replaying every segment. Damage is cut off and
    /// reported, never refused.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
    ) -> io::Result<(SegmentLog, Recovered, RecoveryReport)> {
        fs::create_dir_all(dir)?;
        let ids = segment_ids(dir)?;
        let mut index = Index::default();
        let mut recovered = Recovered::new();
        let mut report = RecoveryReport {
            segments: ids.len(),
            ..RecoveryReport::default()
        };
        let mut last_note = std::time::Instant::now();
        for (i, &id) in ids.iter().enumerate() {
            let last = i + 1 == ids.len();
            index.replay_segment(
                &segment_path(dir, id),
                id,
                last,
                &mut recovered,
                &mut report,
            )?;
            if last_note.elapsed() >= std::time::Duration::from_secs(1) {
                last_note = std::time::Instant::now();
                tracing::info!(
                    segment = i + 1,
                    of = ids.len(),
                    records = report.records,
                    "recovering the message log"
                );
            }
        }
        report.live_messages = index.queues.values().map(|m| m.len() as u64).sum();
        let (active_id, active) = match ids.last() {
            Some(&last) => (
                last,
                OpenOptions::new()
                    .append(true)
                    .open(segment_path(dir, last))?,
            ),
            None => (1, new_segment_file(dir, 1)?),
        };
        index.segments.entry(active_id).or_insert(SegmentInfo {
            size: SEGMENT_MAGIC.len() as u64,
            ..SegmentInfo::default()
        });
        let log = SegmentLog {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(4096),
            index,
            active_id,
            active,
            buf: Vec::with_capacity(64 * 1024),
        };
        Ok((log, recovered, report))
    }

    fn create_segment(&mut self, id: u64) -> io::Result<()> {
        self.active = new_segment_file(&self.dir, id)?;
        self.active_id = id;
        self.index.segments.insert(
            id,
            SegmentInfo {
                size: SEGMENT_MAGIC.len() as u64,
                ..SegmentInfo::default()
            },
        );
        Ok(())
    }

    fn active_size(&self) -> u64 {
        self.index
            .segments
            .get(&self.active_id)
            .map_or(0, |s| s.size)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.active.write_all(&self.buf)?;
        if let Some(s) = self.index.segments.get_mut(&self.active_id) {
            s.size += self.buf.len() as u64;
        }
        self.buf.clear();
        Ok(())
    }

    /// The active segment is full: make it durable and start the next one.
    fn roll(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.active.sync_data()?;
        self.create_segment(self.active_id + 1)
    }

    /// Writes `ops` (not yet synced; see [`SegmentLog::sync_handle`]). Returns true if any
    /// Publish or DropQueue record was written, i.e. whether a sync matters.
    pub fn write(&mut self, ops: &[Op]) -> io::Result<bool> {
        let mut needs_sync = false;
        for op in ops {
            let pending = self.active_size() + self.buf.len() as u64;
            if pending > SEGMENT_MAGIC.len() as u64 && pending >= self.segment_bytes {
                self.roll()?;
            }
            let offset = self.active_size() + self.buf.len() as u64;
            let before = self.buf.len();
            match op {
                Op::Publish {
                    queue,
                    seq,
                    head,
                    message,
                } => {
                    record::put_publish(&mut self.buf, *queue, *seq, *head, message);
                    let len = (self.buf.len() - before) as u32;
                    self.index.insert(
                        *queue,
                        *seq,
                        Loc {
                            segment: self.active_id,
                            offset,
                            len,
                            redelivered: head.redelivered,
                        },
                    );
                    needs_sync = true;
                }
                Op::Ack { queue, seq } => {
                    if self.index.remove(*queue, *seq) {
                        record::put_mark(&mut self.buf, Kind::Ack, *queue, *seq);
                    }
                }
                Op::Delivered { queue, seq } => {
                    let loc = self.index.get_mut(*queue, *seq);
                    if let Some(loc) = loc.filter(|l| !l.redelivered) {
                        loc.redelivered = true;
                        record::put_mark(&mut self.buf, Kind::Delivered, *queue, *seq);
                    }
                }
                Op::DropQueue { queue } => {
                    if self.index.remove_queue(*queue) {
                        record::put_mark(&mut self.buf, Kind::DropQueue, *queue, 0);
                        needs_sync = true;
                    }
                }
            }
            if self.buf.len() >= 256 * 1024 {
                self.flush_buf()?;
            }
        }
        self.flush_buf()?;
        Ok(needs_sync)
    }

    /// A handle on the active segment, to `sync_data` without holding the log.
    pub fn sync_handle(&self) -> io::Result<File> {
        self.active.try_clone()
    }

    /// Makes everything written durable.
    pub fn sync(&self) -> io::Result<()> {
        self.active.sync_data()
    }

    /// Reads live messages of one queue back from disk, one result per seq (None: not live).
    /// Records next to each other in a segment are read with one `pread`.
    pub fn read_many(&self, queue: u64, seqs: &[u64]) -> io::Result<Vec<Option<Message>>> {
        let mut out: Vec<Option<Message>> = vec![None; seqs.len()];
        let mut wanted: Vec<(Loc, usize)> = seqs
            .iter()
            .enumerate()
            .filter_map(|(i, &seq)| self.index.get(queue, seq).map(|l| (*l, i)))
            .collect();
        wanted.sort_unstable_by_key(|(l, _)| (l.segment, l.offset));
        let mut file: Option<(u64, File)> = None;
        let mut run = 0;
        while run < wanted.len() {
            let first = wanted[run].0;
            let mut end = run + 1;
            let mut span = u64::from(first.len);
            while end < wanted.len()
                && wanted[end].0.segment == first.segment
                && wanted[end].0.offset == first.offset + span
                && span < READ_RUN_BYTES
            {
                span += u64::from(wanted[end].0.len);
                end += 1;
            }
            if file.as_ref().is_none_or(|(id, _)| *id != first.segment) {
                file = Some((
                    first.segment,
                    File::open(segment_path(&self.dir, first.segment))?,
                ));
            }
            let Some((_, f)) = &file else { break };
            let mut data = vec![0; span as usize];
            f.read_exact_at(&mut data, first.offset)?;
            let mut pos = 0;
            for (loc, i) in &wanted[run..end] {
                let rec = &data[pos..pos + loc.len as usize];
                pos += loc.len as usize;
                match record::read(rec) {
                    Read::Ok(r, _) => {
                        out[*i] = record::decode_publish(r.payload).map(|(_, m)| m);
                    }
                    _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "damaged record")),
                }
            }
            run = end;
        }
        Ok(out)
    }

    /// Live messages of a queue.
    pub fn queue_len(&self, queue: u64) -> usize {
        self.index.queues.get(&queue).map_or(0, |q| q.len())
    }

    /// Queue ids with live messages.
    pub fn queues(&self) -> Vec<u64> {
        self.index.queues.keys().copied().collect()
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.index.segments.len()
    }

    /// Total bytes of all segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.index.segments.values().map(|s| s.size).sum()
    }

    /// Deletes dead segments at the front, and compacts the oldest one if it is mostly dead.
    pub fn reclaim(&mut self) -> io::Result<Reclaimed> {
        let mut done = Reclaimed::default();
        while let Some((&head, &info)) = self.index.segments.iter().next() {
            if head == self.active_id {
                break;
            }
            if info.live == 0 {
                fs::remove_file(segment_path(&self.dir, head))?;
                self.index.segments.remove(&head);
                done.deleted_segments += 1;
                continue;
            }
            if info.live_bytes * 2 >= info.size {
                break;
            }
            done.compacted_messages += self.compact(head)?;
        }
        Ok(done)
    }

    /// Writes the live messages of segment `id` again at the end, durably; it is then dead.
    fn compact(&mut self, id: u64) -> io::Result<u64> {
        let data = fs::read(segment_path(&self.dir, id))?;
        let mut ops = Vec::new();
        let mut pos = SEGMENT_MAGIC.len();
        while pos < data.len() {
            let Read::Ok(rec, len) = record::read(&data[pos..]) else {
                break;
            };
            if rec.kind == Kind::Publish {
                let loc = self.index.get(rec.queue, rec.seq);
                if let Some(loc) = loc.filter(|l| l.segment == id && l.offset == pos as u64) {
                    if let Some((meta, message)) = record::decode_publish(rec.payload) {
                        ops.push(Op::Publish {
                            queue: rec.queue,
                            seq: rec.seq,
                            head: PublishHead {
                                redelivered: loc.redelivered,
                                enqueued_at: meta.enqueued_at.unwrap_or_else(unix_ms),
                            },
                            message: Arc::new(message),
                        });
                    }
                }
            }
            pos += len;
        }
        let moved = ops.len() as u64;
        self.write(&ops)?;
        self.sync()?;
        // Anything still counted here could not be read back: it goes with the file.
        if let Some(info) = self.index.segments.get_mut(&id) {
            info.live = 0;
            info.live_bytes = 0;
        }
        Ok(moved)
    }
}

/// Creates segment `id` with its magic, durably, and opens it for appending.
fn new_segment_file(dir: &Path, id: u64) -> io::Result<File> {
    let path = segment_path(dir, id);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    f.write_all(SEGMENT_MAGIC)?;
    f.sync_data()?;
    sync_dir(dir)?;
    OpenOptions::new().append(true).open(&path)
}
