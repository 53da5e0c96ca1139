//! Tests of the durable stores on real files in temporary directories.

use super::segment_log::{Op, Recovered, SegmentLog};
use super::*;
use crate::exchange::{Binding, Destination, ExchangeDef, ExchangeKind};
use crate::message::{Message, Properties};
use crate::queue::QueueDef;
use crate::storage::{MessageStore, MetaCommand, MetadataStore, Permission};
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn msg(body: &[u8]) -> Arc<Message> {
    Message::new(
        "ex",
        "rk",
        Properties {
            delivery_mode: Some(2),
            ..Properties::default()
        },
        Bytes::copy_from_slice(body),
    )
}

fn publish(queue: u64, seq: u64, body: &[u8]) -> Op {
    Op::Publish {
        queue,
        seq,
        head: record::PublishHead {
            redelivered: false,
            enqueued_at: 1,
        },
        message: msg(body),
    }
}

/// (queue, seq) -> (body, redelivered) of what a log recovered, the bodies read back from it.
fn flatten(log: &SegmentLog, r: &Recovered) -> BTreeMap<(u64, u64), (Vec<u8>, bool)> {
    let mut out = BTreeMap::new();
    for (q, m) in r {
        let seqs: Vec<u64> = m.keys().copied().collect();
        let bodies = log.read_many(*q, &seqs).expect("live records read back");
        for ((seq, meta), body) in m.iter().zip(bodies) {
            let body = body.expect("a recovered message is live").body.to_vec();
            assert_eq!(body.len(), meta.body_size);
            out.insert((*q, *seq), (body, meta.redelivered));
        }
    }
    out
}

fn reopen(dir: &Path, seg: u64) -> (SegmentLog, Recovered, RecoveryReport) {
    SegmentLog::open(dir, seg).expect("log reopens")
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files.pop().expect("a segment")
}

#[test]
fn log_appends_acks_and_recovers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, rec, report) = reopen(dir.path(), 4096);
    assert!(rec.is_empty());
    assert!(report.truncations.is_empty());
    let ops: Vec<Op> = (0..100).map(|i| publish(7, i, &[i as u8; 100])).collect();
    assert!(log.write(&ops).unwrap());
    log.write(&[
        Op::Ack { queue: 7, seq: 3 },
        Op::Delivered { queue: 7, seq: 4 },
    ])
    .unwrap();
    log.sync().unwrap();
    assert!(log.segment_count() > 1, "small segments roll");
    assert_eq!(
        log.read_many(7, &[5]).unwrap()[0].as_ref().unwrap().body[..],
        [5u8; 100]
    );
    drop(log);
    let (log, rec, report) = reopen(dir.path(), 4096);
    let got = flatten(&log, &rec);
    assert_eq!(got.len(), 99);
    assert!(!got.contains_key(&(7, 3)));
    assert!(got[&(7, 4)].1, "delivered mark survives as redelivered");
    assert!(!got[&(7, 5)].1);
    assert_eq!(report.live_messages, 99);
    assert_eq!(log.queue_len(7), 99);
    let seqs: Vec<u64> = rec[&7].keys().copied().collect();
    assert_eq!(seqs, (0..100).filter(|&s| s != 3).collect::<Vec<_>>());
}

#[test]
fn acked_segments_are_deleted_and_sparse_ones_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = reopen(dir.path(), 4096);
    let ops: Vec<Op> = (0..400).map(|i| publish(1, i, &[1; 200])).collect();
    log.write(&ops).unwrap();
    let before = log.segment_count();
    // Ack everything but one message in the first segment and one near the end.
    let acks: Vec<Op> = (1..399).map(|seq| Op::Ack { queue: 1, seq }).collect();
    log.write(&acks).unwrap();
    log.write(&[Op::Delivered { queue: 1, seq: 0 }]).unwrap();
    let r = log.reclaim().unwrap();
    assert!(r.compacted_messages >= 1, "{r:?}");
    assert!(
        log.segment_count() < before,
        "{} !< {before}",
        log.segment_count()
    );
    drop(log);
    let (log, rec, _) = reopen(dir.path(), 4096);
    let got = flatten(&log, &rec);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        vec![(1, 0), (1, 399)]
    );
    assert!(
        got[&(1, 0)].1,
        "the compacted copy keeps the redelivered flag"
    );
}

#[test]
fn dropped_queue_records_stay_dead_when_the_name_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = reopen(dir.path(), 4096);
    log.write(&[publish(5, 0, b"old"), publish(5, 1, b"old")])
        .unwrap();
    log.write(&[Op::DropQueue { queue: 5 }, publish(5, 0, b"new")])
        .unwrap();
    drop(log);
    let (log, rec, _) = reopen(dir.path(), 4096);
    assert_eq!(
        flatten(&log, &rec).into_iter().collect::<Vec<_>>(),
        vec![((5, 0), (b"new".to_vec(), false))]
    );
}

#[test]
fn damage_in_the_last_segment_costs_only_what_is_damaged() {
    for damage in ["truncate", "flip"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = reopen(dir.path(), 1 << 20);
        let ops: Vec<Op> = (0..50).map(|i| publish(2, i, &[i as u8; 64])).collect();
        log.write(&ops).unwrap();
        log.sync().unwrap();
        drop(log);
        let path = last_segment(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        // Each record is the same size: damage record 40.
        let rec_len = (len - 8) / 50;
        let at = 8 + rec_len * 40;
        if damage == "truncate" {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(at + rec_len / 2).unwrap();
        } else {
            let mut data = std::fs::read(&path).unwrap();
            data[(at + 20) as usize] ^= 0xff;
            std::fs::write(&path, data).unwrap();
        }
        let (mut log, rec, report) = reopen(dir.path(), 1 << 20);
        let got = flatten(&log, &rec);
        if damage == "truncate" {
            // A torn tail: cut off, everything before it kept.
            assert_eq!(got.len(), 40);
            assert!(got.keys().all(|(_, s)| *s < 40));
            assert_eq!(report.truncations.len(), 1);
            let t = &report.truncations[0];
            assert_eq!((t.offset, t.records), (at, 1), "{t:?}");
            assert!(report.skipped.is_empty());
        } else {
            // A flipped bit with valid records after it: only that record is lost.
            assert_eq!(got.len(), 49);
            assert!(!got.contains_key(&(2, 40)));
            assert!(report.truncations.is_empty());
            assert_eq!(report.skipped.len(), 1);
            let h = &report.skipped[0];
            assert_eq!((h.offset, h.bytes), (at, rec_len), "{h:?}");
            let copy = std::fs::read(&h.copy).expect("the damaged bytes are kept");
            assert_eq!(copy.len() as u64, rec_len);
        }
        // The log is usable again.
        log.write(&[publish(2, 100, b"after")]).unwrap();
        drop(log);
        let (log, rec, report) = reopen(dir.path(), 1 << 20);
        let expected = if damage == "truncate" { 41 } else { 50 };
        assert_eq!(flatten(&log, &rec).len(), expected);
        assert!(report.truncations.is_empty());
    }
}

/// A damaged record in a segment that is not the last one, however it is damaged, costs that
/// record (or the damaged stretch) and nothing after it; the file is never truncated.
#[test]
fn damage_inside_an_older_segment_is_skipped_not_cut() {
    for damage in ["flip-body", "flip-length", "zeros", "torn-end"] {
        let dir = tempfile::tempdir().unwrap();
        // Small segments: the 50 records span several files.
        let (mut log, _, _) = reopen(dir.path(), 4096);
        for i in 0..50 {
            log.write(&[publish(2, i, &[i as u8; 200])]).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        let mut segs: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        assert!(segs.len() >= 3, "{segs:?}");
        let first = &segs[0];
        let mut data = std::fs::read(first).unwrap();
        let before = data.len();
        let rec_len = {
            let record::Read::Ok(_, len) = record::read(&data[8..]) else {
                panic!("a first record")
            };
            len
        };
        let n_in_first = (data.len() - 8) / rec_len;
        assert!(n_in_first >= 3);
        let second = 8 + rec_len;
        match damage {
            "flip-body" => data[second + 40] ^= 0x01,
            "flip-length" => data[second + 2] ^= 0x40,
            "zeros" => data[second..second + rec_len].fill(0),
            _ => data.truncate(data.len() - rec_len / 2),
        }
        std::fs::write(first, &data).unwrap();
        let (log, rec, report) = reopen(dir.path(), 4096);
        let got = flatten(&log, &rec);
        let lost: Vec<u64> = (0..50).filter(|s| !got.contains_key(&(2, *s))).collect();
        let expected = if damage == "torn-end" {
            vec![n_in_first as u64 - 1]
        } else {
            vec![1]
        };
        assert_eq!(lost, expected, "{damage}");
        assert!(
            report.truncations.is_empty(),
            "{damage}: {:?}",
            report.truncations
        );
        assert_eq!(report.skipped.len(), 1, "{damage}");
        assert!(report.skipped[0].copy.exists());
        let after = std::fs::metadata(first).unwrap().len() as usize;
        assert_eq!(after, data.len(), "{damage}: the file is left as it was");
        assert!(after <= before);
        drop(log);
        // A second restart finds the same damage and the same messages.
        let (log, rec, report) = reopen(dir.path(), 4096);
        assert_eq!(flatten(&log, &rec).len(), 50 - lost.len());
        assert_eq!(report.skipped.len(), 1);
    }
}

#[derive(Debug, Clone)]
enum ModelOp {
    Publish(u64, usize),
    Ack(usize),
    Deliver(usize),
    Drop(u64),
    Reclaim,
    Reopen,
}

fn model_op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        6 => (0u64..3, 0usize..600).prop_map(|(q, n)| ModelOp::Publish(q, n)),
        4 => any::<usize>().prop_map(ModelOp::Ack),
        1 => any::<usize>().prop_map(ModelOp::Deliver),
        1 => (0u64..3).prop_map(ModelOp::Drop),
        1 => Just(ModelOp::Reclaim),
        1 => Just(ModelOp::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random operation sequences against an in-memory model: whatever the log recovers after
    /// any reopen equals the model.
    #[test]
    fn log_matches_a_model(ops in proptest::collection::vec(model_op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = reopen(dir.path(), 4096);
        let mut model: BTreeMap<(u64, u64), (Vec<u8>, bool)> = BTreeMap::new();
        let mut next_seq: HashMap<u64, u64> = HashMap::new();
        for op in ops {
            match op {
                ModelOp::Publish(q, n) => {
                    let seq = next_seq.entry(q).or_default();
                    let body: Vec<u8> = (0..n).map(|i| (i + *seq as usize) as u8).collect();
                    log.write(&[publish(q, *seq, &body)]).unwrap();
                    model.insert((q, *seq), (body, false));
                    *seq += 1;
                }
                ModelOp::Ack(i) | ModelOp::Deliver(i) if !model.is_empty() => {
                    let key = *model.keys().nth(i % model.len()).unwrap();
                    if let ModelOp::Ack(_) = op {
                        log.write(&[Op::Ack { queue: key.0, seq: key.1 }]).unwrap();
                        model.remove(&key);
                    } else {
                        log.write(&[Op::Delivered { queue: key.0, seq: key.1 }]).unwrap();
                        model.get_mut(&key).unwrap().1 = true;
                    }
                }
                ModelOp::Ack(_) | ModelOp::Deliver(_) => {}
                ModelOp::Drop(q) => {
                    log.write(&[Op::DropQueue { queue: q }]).unwrap();
                    model.retain(|(mq, _), _| *mq != q);
                }
                ModelOp::Reclaim => {
                    log.reclaim().unwrap();
                }
                ModelOp::Reopen => {
                    drop(log);
                    let (l, rec, report) = reopen(dir.path(), 4096);
                    prop_assert!(report.truncations.is_empty());
                    prop_assert_eq!(&flatten(&l, &rec), &model);
                    log = l;
                }
            }
        }
        log.reclaim().unwrap();
        drop(log);
        let (log, rec, _) = reopen(dir.path(), 4096);
        prop_assert_eq!(&flatten(&log, &rec), &model);
    }
}

#[derive(Debug, Clone)]
enum StoreOp {
    Append(u64),
    Settle(usize),
    Deliver(usize),
    Drop(u64),
    Sync,
    /// Lets the writer thread run (it takes batches on its own clock).
    Pause(u64),
}

fn store_op() -> impl Strategy<Value = StoreOp> {
    prop_oneof![
        8 => (0u64..3).prop_map(StoreOp::Append),
        5 => any::<usize>().prop_map(StoreOp::Settle),
        1 => any::<usize>().prop_map(StoreOp::Deliver),
        1 => (0u64..3).prop_map(StoreOp::Drop),
        2 => Just(StoreOp::Sync),
        2 => (0u64..400).prop_map(StoreOp::Pause),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random appends, settles, deliveries and drops racing the writer thread (a 100 µs commit
    /// window): every sync resolves, and a reopen recovers exactly the unsettled messages with
    /// their redelivered flags.
    #[test]
    fn the_store_matches_a_model(ops in proptest::collection::vec(store_op(), 1..150)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions {
            commit_window: Duration::from_micros(100),
            ..LogOptions::default()
        };
        let (store, _) = DurableMessageStore::open(dir.path(), options.clone()).unwrap();
        let mut model: BTreeMap<(u64, u64), bool> = BTreeMap::new();
        let mut next_seq: HashMap<u64, u64> = HashMap::new();
        for op in ops {
            let nth = |i: usize| *model.keys().nth(i % model.len()).unwrap();
            match op {
                StoreOp::Append(q) => {
                    let seq = next_seq.entry(q).or_default();
                    store.append(q, *seq, &msg(&seq.to_be_bytes()));
                    model.insert((q, *seq), false);
                    *seq += 1;
                }
                StoreOp::Settle(i) if !model.is_empty() => {
                    let (q, seq) = nth(i);
                    store.settle(q, seq);
                    model.remove(&(q, seq));
                }
                StoreOp::Deliver(i) if !model.is_empty() => {
                    let (q, seq) = nth(i);
                    store.mark_delivered(q, seq);
                    model.insert((q, seq), true);
                }
                StoreOp::Settle(_) | StoreOp::Deliver(_) => {}
                StoreOp::Drop(q) => {
                    store.drop_queue(q);
                    model.retain(|k, _| k.0 != q);
                }
                StoreOp::Sync => {
                    let synced = rt.block_on(async {
                        tokio::time::timeout(Duration::from_secs(5), store.sync()).await
                    });
                    prop_assert!(matches!(synced, Ok(Ok(()))), "{synced:?}");
                }
                StoreOp::Pause(us) => std::thread::sleep(Duration::from_micros(us)),
            }
        }
        store.close();
        drop(store);
        let (store, _) = DurableMessageStore::open(dir.path(), options).unwrap();
        let mut recovered = BTreeMap::new();
        for q in 0..3 {
            for m in store.load(q) {
                recovered.insert((q, m.seq), m.redelivered);
            }
        }
        prop_assert_eq!(recovered, model);
    }
}

fn store_options() -> LogOptions {
    LogOptions {
        commit_window: Duration::from_millis(20),
        ..LogOptions::default()
    }
}

#[tokio::test]
async fn durable_store_syncs_and_elides_settled_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
    for seq in 0..10 {
        store.append(1, seq, &msg(b"m"));
    }
    // Settled within the commit window: never written.
    for seq in 0..5 {
        store.settle(1, seq);
    }
    store.mark_delivered(1, 6);
    synced(&store).await;
    let stats = store.stats();
    assert_eq!(stats.elided.load(std::sync::atomic::Ordering::Relaxed), 5);
    assert_eq!(
        stats.published.load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    assert_eq!(stats.fsyncs.load(std::sync::atomic::Ordering::Relaxed), 1);
    store.settle(1, 9);
    store.close();
    drop(store);
    let (store, report) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
    assert_eq!(report.live_messages, 4);
    let got: Vec<(u64, bool)> = store
        .load(1)
        .iter()
        .map(|m| (m.seq, m.redelivered))
        .collect();
    assert_eq!(got, vec![(5, false), (6, true), (7, false), (8, false)]);
}

/// Waits (at most 5 s) for a sync of `store`.
async fn synced(store: &DurableMessageStore) {
    tokio::time::timeout(Duration::from_secs(5), store.sync())
        .await
        .expect("sync resolves")
        .unwrap();
}

/// Polls `sync` once: true if it is still waiting.
async fn pending(
    sync: &mut (impl std::future::Future<Output = crate::CoreResult<()>> + Unpin),
) -> bool {
    tokio::time::timeout(Duration::ZERO, sync).await.is_err()
}

#[tokio::test]
async fn a_sync_resolves_once_everything_before_it_is_settled_without_a_write() {
    let dir = tempfile::tempdir().unwrap();
    // A window far longer than the test's timeouts: only settling can resolve the sync.
    let options = LogOptions {
        commit_window: Duration::from_secs(30),
        ..LogOptions::default()
    };
    let (store, _) = DurableMessageStore::open(dir.path(), options.clone()).unwrap();
    for seq in 0..3 {
        store.append(1, seq, &msg(b"m"));
    }
    store.append(2, 0, &msg(b"dropped with its queue"));
    let mut sync = Box::pin(store.sync());
    assert!(pending(&mut sync).await);
    store.settle(1, 0);
    store.settle(1, 2);
    store.drop_queue(2);
    assert!(
        pending(&mut sync).await,
        "seq 1 is neither settled nor written"
    );
    store.settle(1, 1);
    tokio::time::timeout(Duration::from_secs(5), sync)
        .await
        .expect("resolved by the last settle")
        .unwrap();
    // Nothing new since: the next sync needs no wait at all.
    assert!(!pending(&mut Box::pin(store.sync())).await);
    let stats = store.stats();
    assert_eq!(stats.published.load(Ordering::Relaxed), 0);
    assert_eq!(stats.fsyncs.load(Ordering::Relaxed), 0);
    store.close();
    drop(store);
    let (_, report) = DurableMessageStore::open(dir.path(), options).unwrap();
    assert_eq!(report.live_messages, 0);
}

#[tokio::test]
async fn a_sync_behind_an_unsettled_message_waits_for_its_write() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
    for seq in 0..3 {
        store.append(1, seq, &msg(b"m"));
    }
    store.settle(1, 0);
    store.settle(1, 2);
    synced(&store).await;
    let stats = store.stats();
    assert_eq!(stats.published.load(Ordering::Relaxed), 1);
    assert_eq!(stats.fsyncs.load(Ordering::Relaxed), 1);
    // Appended and settled after the write: resolved without another.
    store.append(1, 3, &msg(b"m"));
    store.settle(1, 3);
    assert!(!pending(&mut Box::pin(store.sync())).await);
    assert_eq!(stats.fsyncs.load(Ordering::Relaxed), 1);
    store.close();
    drop(store);
    let (store, report) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
    assert_eq!(report.live_messages, 1);
    assert_eq!(store.load(1)[0].seq, 1);
}

#[tokio::test]
async fn unclaimed_queues_are_dropped_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
        store.append(1, 0, &msg(b"kept"));
        store.append(2, 0, &msg(b"orphan"));
        store.sync().await.unwrap();
    }
    {
        let (store, report) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
        assert_eq!(report.live_messages, 2);
        assert_eq!(store.load(1).len(), 1);
        store.recovery_done();
    }
    let (store, report) = DurableMessageStore::open(dir.path(), store_options()).unwrap();
    assert_eq!(report.live_messages, 1);
    let stored = store.load(1);
    assert!(
        stored[0].message.is_none(),
        "bodies stay on disk until read"
    );
    let back = store.read(1, &[stored[0].seq]);
    assert_eq!(
        back[0].as_ref().map(|m| m.body.clone()),
        Some(Bytes::from_static(b"kept"))
    );
}

#[test]
fn redb_metadata_round_trips_with_cascades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let binding = |src: &str, q: &str| Binding {
        source: src.into(),
        destination: Destination::Queue(q.into()),
        routing_key: "k".into(),
        arguments: Default::default(),
    };
    {
        let meta = RedbMetadataStore::open(&path).unwrap();
        meta.apply(&[
            MetaCommand::PutVHost("/".into()),
            MetaCommand::PutVHost("other".into()),
            MetaCommand::PutExchange {
                vhost: "/".into(),
                def: ExchangeDef::new("ex", ExchangeKind::Topic),
            },
            MetaCommand::PutQueue {
                vhost: "/".into(),
                def: QueueDef::new("q1"),
                owner: None,
            },
            MetaCommand::PutQueue {
                vhost: "/".into(),
                def: QueueDef::new("q2"),
                owner: None,
            },
            MetaCommand::PutQueue {
                vhost: "other".into(),
                def: QueueDef::new("q3"),
                owner: None,
            },
            MetaCommand::PutBinding {
                vhost: "/".into(),
                binding: binding("ex", "q1"),
            },
            MetaCommand::PutBinding {
                vhost: "/".into(),
                binding: binding("ex", "q2"),
            },
            MetaCommand::PutRecord {
                space: "mqtt".into(),
                key: "c1".into(),
                value: vec![0, 1, 2],
            },
        ])
        .unwrap();
        meta.apply(&[
            MetaCommand::DeleteQueue {
                vhost: "/".into(),
                name: "q2".into(),
            },
            MetaCommand::DeleteVHost("other".into()),
        ])
        .unwrap();
        meta.submit(vec![MetaCommand::PutRecord {
            space: "mqtt".into(),
            key: "c2".into(),
            value: vec![9],
        }]);
    }
    let meta = RedbMetadataStore::open(&path).unwrap();
    let snap = meta.load().unwrap();
    let mut vhosts = snap.vhosts.clone();
    vhosts.sort();
    assert_eq!(vhosts, vec!["/".to_string()]);
    assert_eq!(snap.exchanges.len(), 1);
    assert_eq!(
        snap.queues
            .iter()
            .map(|(_, q)| q.name.as_str())
            .collect::<Vec<_>>(),
        vec!["q1"]
    );
    assert_eq!(snap.bindings, vec![("/".to_string(), binding("ex", "q1"))]);
    assert_eq!(
        snap.records,
        vec![
            ("mqtt".to_string(), "c1".to_string(), vec![0, 1, 2]),
            ("mqtt".to_string(), "c2".to_string(), vec![9]),
        ]
    );
}

#[test]
fn a_second_open_of_a_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = DataDir::open(dir.path(), LogOptions::default()).unwrap();
    let err = DataDir::open(dir.path(), LogOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DataDirError::Locked { .. }), "{text}");
    assert!(text.contains("in use by another Junction"), "{text}");
    assert!(text.contains(&std::process::id().to_string()), "{text}");
    drop(first);
    DataDir::open(dir.path(), LogOptions::default()).expect("free again once closed");
}

#[test]
fn redb_permissions_go_with_their_user_and_their_vhost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let perm = |user: &str, vhost: &str| Permission {
        user: user.into(),
        vhost: vhost.into(),
        configure: ".*".into(),
        write: "^w".into(),
        read: "".into(),
    };
    let user = |name: &str| crate::auth::new_user(name, "pw", vec![], vec![]);
    {
        let meta = RedbMetadataStore::open(&path).unwrap();
        meta.apply(&[
            MetaCommand::PutVHost("/".into()),
            MetaCommand::PutVHost("gone".into()),
            MetaCommand::PutUser(user("kept")),
            MetaCommand::PutUser(user("leaving")),
            MetaCommand::PutPermission(perm("kept", "/")),
            MetaCommand::PutPermission(perm("kept", "gone")),
            MetaCommand::PutPermission(perm("leaving", "/")),
        ])
        .unwrap();
        meta.apply(&[
            MetaCommand::DeleteUser("leaving".into()),
            MetaCommand::DeleteVHost("gone".into()),
        ])
        .unwrap();
    }
    let snap = RedbMetadataStore::open(&path).unwrap().load().unwrap();
    assert_eq!(snap.permissions, vec![perm("kept", "/")]);
    // The snapshot replays through the state machine: the permission lands on its user.
    let mut state = crate::meta::MetaState::new();
    for cmd in snap.commands() {
        state.apply(&cmd).unwrap();
    }
    assert_eq!(
        state.durable_snapshot().permissions,
        vec![perm("kept", "/")]
    );
}
