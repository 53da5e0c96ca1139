//! The durable [`MetadataStore`]: commands applied to one redb table, many commands per
//! transaction. A writer thread takes whatever was submitted since its last commit and applies
//! it in one write transaction (group commit for metadata).
//!
//! Keys are byte strings: a kind letter, then the vhost, then the name, NUL-separated; values
//! are postcard encodings of the core's definitions.

use super::watermark::{lock, Watermark};
use crate::error::{CoreError, CoreResult};
use crate::exchange::{Binding, Destination, ExchangeDef};
use crate::limits::LimitTable;
use crate::policy::Policy;
use crate::queue::QueueDef;
use crate::storage::{
    MetaCommand, MetaSnapshot, MetadataStore, Permission, TopicPermission, UserRecord,
};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");

const VHOST: u8 = b'v';
const EXCHANGE: u8 = b'e';
const QUEUE: u8 = b'q';
const BINDING: u8 = b'b';
const USER: u8 = b'u';
const PERMISSION: u8 = b'p';
const RECORD: u8 = b'r';
const POLICY: u8 = b'o';
const TOPIC_PERMISSION: u8 = b't';
const VHOST_LIMITS: u8 = b'l';
const USER_LIMITS: u8 = b'm';
const VHOST_METADATA: u8 = b'd';

fn key(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![kind, 0];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// The prefix of every key of `kind` in `vhost`.
fn vhost_prefix(kind: u8, vhost: &str) -> Vec<u8> {
    let mut k = key(kind, &[vhost.as_bytes()]);
    k.push(0);
    k
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap_or_default()
}

fn storage_err(e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(format!("metadata store: {e}"))
}

type MetaTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// Keys starting with `prefix`.
fn keys_with_prefix(t: &MetaTable<'_>, prefix: &[u8]) -> CoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in t.range(prefix..).map_err(storage_err)? {
        let (k, v) = item.map_err(storage_err)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

/// Removes the bindings of `vhost` that `dead` matches.
fn remove_bindings(
    t: &mut MetaTable<'_>,
    vhost: &str,
    dead: impl Fn(&Binding) -> bool,
) -> CoreResult<()> {
    let prefix = vhost_prefix(BINDING, vhost);
    for (k, _) in keys_with_prefix(t, &prefix)? {
        let gone = postcard::from_bytes::<Binding>(&k[prefix.len()..]).map_or(true, |b| dead(&b));
        if gone {
            t.remove(k.as_slice()).map_err(storage_err)?;
        }
    }
    Ok(())
}

fn apply_one(t: &mut MetaTable<'_>, c: &MetaCommand) -> CoreResult<()> {
    let put = |t: &mut MetaTable<'_>, k: Vec<u8>, v: Vec<u8>| -> CoreResult<()> {
        t.insert(k.as_slice(), v.as_slice()).map_err(storage_err)?;
        Ok(())
    };
    let del = |t: &mut MetaTable<'_>, k: Vec<u8>| -> CoreResult<()> {
        t.remove(k.as_slice()).map_err(storage_err)?;
        Ok(())
    };
    match c {
        MetaCommand::PutVHost(v) => put(t, key(VHOST, &[v.as_bytes()]), Vec::new()),
        MetaCommand::DeleteVHost(v) => {
            for kind in [
                EXCHANGE,
                QUEUE,
                BINDING,
                PERMISSION,
                POLICY,
                TOPIC_PERMISSION,
            ] {
                for (k, _) in keys_with_prefix(t, &vhost_prefix(kind, v))? {
                    del(t, k)?;
                }
            }
            del(t, key(VHOST_LIMITS, &[v.as_bytes()]))?;
            del(t, key(VHOST_METADATA, &[v.as_bytes()]))?;
            del(t, key(VHOST, &[v.as_bytes()]))
        }
        MetaCommand::PutExchange { vhost, def } => put(
            t,
            key(EXCHANGE, &[vhost.as_bytes(), def.name.as_bytes()]),
            encode(def),
        ),
        MetaCommand::DeleteExchange { vhost, name } => {
            let as_dest = Destination::Exchange(name.clone());
            remove_bindings(t, vhost, |b| b.source == *name || b.destination == as_dest)?;
            del(t, key(EXCHANGE, &[vhost.as_bytes(), name.as_bytes()]))
        }
        MetaCommand::PutQueue { vhost, def, .. } => put(
            t,
            key(QUEUE, &[vhost.as_bytes(), def.name.as_bytes()]),
            encode(def),
        ),
        MetaCommand::DeleteQueue { vhost, name } => {
            let as_dest = Destination::Queue(name.clone());
            remove_bindings(t, vhost, |b| b.destination == as_dest)?;
            del(t, key(QUEUE, &[vhost.as_bytes(), name.as_bytes()]))
        }
        MetaCommand::PutBinding { vhost, binding } => put(
            t,
            key(BINDING, &[vhost.as_bytes(), &encode(binding)]),
            Vec::new(),
        ),
        MetaCommand::DeleteBinding { vhost, binding } => {
            del(t, key(BINDING, &[vhost.as_bytes(), &encode(binding)]))
        }
        MetaCommand::PutUser(u) => put(t, key(USER, &[u.name.as_bytes()]), encode(u)),
        MetaCommand::DeleteUser(n) => {
            // Permissions are keyed by vhost first: a user's are found by a scan (rare).
            for (k, _) in keys_with_prefix(t, &key(PERMISSION, &[]))? {
                if matches!(split_key(&k), Some((PERMISSION, parts)) if parts.get(1) == Some(&n.as_bytes()))
                {
                    del(t, k)?;
                }
            }
            for (k, v) in keys_with_prefix(t, &key(TOPIC_PERMISSION, &[]))? {
                if postcard::from_bytes::<TopicPermission>(&v).is_ok_and(|p| p.user == *n) {
                    del(t, k)?;
                }
            }
            del(t, key(USER_LIMITS, &[n.as_bytes()]))?;
            del(t, key(USER, &[n.as_bytes()]))
        }
        MetaCommand::PutTopicPermission(p) => {
            put(t, topic_key(&p.vhost, &p.user, &p.exchange), encode(p))
        }
        MetaCommand::DeleteTopicPermission {
            user,
            vhost,
            exchange,
        } => {
            for (k, v) in keys_with_prefix(t, &vhost_prefix(TOPIC_PERMISSION, vhost))? {
                let hit = postcard::from_bytes::<TopicPermission>(&v).is_ok_and(|p| {
                    p.user == *user && exchange.as_ref().is_none_or(|e| *e == p.exchange)
                });
                if hit {
                    del(t, k)?;
                }
            }
            Ok(())
        }
        MetaCommand::PutVHostMetadata { vhost, metadata } => {
            let k = key(VHOST_METADATA, &[vhost.as_bytes()]);
            if metadata.is_empty() {
                del(t, k)
            } else {
                put(t, k, encode(metadata))
            }
        }
        MetaCommand::PutVHostLimits { vhost, limits } => {
            limits_entry(t, key(VHOST_LIMITS, &[vhost.as_bytes()]), limits)
        }
        MetaCommand::PutUserLimits { user, limits } => {
            limits_entry(t, key(USER_LIMITS, &[user.as_bytes()]), limits)
        }
        MetaCommand::PutPermission(p) => put(
            t,
            key(PERMISSION, &[p.vhost.as_bytes(), p.user.as_bytes()]),
            encode(p),
        ),
        MetaCommand::DeletePermission { user, vhost } => {
            del(t, key(PERMISSION, &[vhost.as_bytes(), user.as_bytes()]))
        }
        MetaCommand::PutPolicy(p) => put(
            t,
            key(POLICY, &[p.vhost.as_bytes(), p.name.as_bytes()]),
            encode(p),
        ),
        MetaCommand::DeletePolicy { vhost, name } => {
            del(t, key(POLICY, &[vhost.as_bytes(), name.as_bytes()]))
        }
        MetaCommand::PutRecord {
            space,
            key: k,
            value,
        } => put(
            t,
            key(RECORD, &[space.as_bytes(), k.as_bytes()]),
            value.clone(),
        ),
        MetaCommand::DeleteRecord { space, key: k } => {
            del(t, key(RECORD, &[space.as_bytes(), k.as_bytes()]))
        }
    }
}

/// A topic permission's key: its vhost first (a vhost's go with it), then user and exchange.
fn topic_key(vhost: &str, user: &str, exchange: &str) -> Vec<u8> {
    let mut k = vhost_prefix(TOPIC_PERMISSION, vhost);
    k.extend_from_slice(&encode(&(user, exchange)));
    k
}

/// Stores a limits table (an empty one removes the entry).
fn limits_entry(t: &mut MetaTable<'_>, k: Vec<u8>, limits: &LimitTable) -> CoreResult<()> {
    if limits.is_empty() {
        t.remove(k.as_slice()).map_err(storage_err)?;
    } else {
        t.insert(k.as_slice(), encode(limits).as_slice())
            .map_err(storage_err)?;
    }
    Ok(())
}

/// Splits a key into its kind and NUL-separated parts.
fn split_key(k: &[u8]) -> Option<(u8, Vec<&[u8]>)> {
    let (&kind, rest) = k.split_first()?;
    let rest = rest.strip_prefix(&[0])?;
    Some((kind, rest.splitn(2, |&b| b == 0).collect()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn snapshot_entry(snap: &mut MetaSnapshot, k: &[u8], v: &[u8]) {
    let Some((kind, parts)) = split_key(k) else {
        return;
    };
    match (kind, parts.as_slice()) {
        (VHOST, [name]) => snap.vhosts.push(text(name)),
        (EXCHANGE, [vhost, _]) => {
            if let Ok(def) = postcard::from_bytes::<ExchangeDef>(v) {
                snap.exchanges.push((text(vhost), def));
            }
        }
        (QUEUE, [vhost, _]) => {
            if let Ok(def) = postcard::from_bytes::<QueueDef>(v) {
                snap.queues.push((text(vhost), def));
            }
        }
        (BINDING, [vhost, b]) => {
            if let Ok(b) = postcard::from_bytes::<Binding>(b) {
                snap.bindings.push((text(vhost), b));
            }
        }
        (USER, [_]) => {
            if let Ok(u) = postcard::from_bytes::<UserRecord>(v) {
                snap.users.push(u);
            }
        }
        (PERMISSION, [_, _]) => {
            if let Ok(p) = postcard::from_bytes::<Permission>(v) {
                snap.permissions.push(p);
            }
        }
        (TOPIC_PERMISSION, [_, _]) => {
            if let Ok(p) = postcard::from_bytes::<TopicPermission>(v) {
                snap.topic_permissions.push(p);
            }
        }
        (VHOST_LIMITS, [vhost]) => {
            if let Ok(l) = postcard::from_bytes::<LimitTable>(v) {
                snap.vhost_limits.push((text(vhost), l));
            }
        }
        (VHOST_METADATA, [vhost]) => {
            if let Ok(m) = postcard::from_bytes::<crate::meta::VHostMetadata>(v) {
                snap.vhost_metadata.push((text(vhost), m));
            }
        }
        (USER_LIMITS, [user]) => {
            if let Ok(l) = postcard::from_bytes::<LimitTable>(v) {
                snap.user_limits.push((text(user), l));
            }
        }
        (POLICY, [_, _]) => {
            if let Ok(p) = postcard::from_bytes::<Policy>(v) {
                snap.policies.push(p);
            }
        }
        (RECORD, [space, key]) => snap.records.push((text(space), text(key), v.to_vec())),
        _ => tracing::warn!(key = ?k, "unknown metadata key ignored"),
    }
}

#[derive(Debug, Default)]
struct Queue {
    commands: Vec<MetaCommand>,
    /// Commands submitted so far (the ticket of the latest).
    submitted: u64,
    shutdown: bool,
}

#[derive(Debug)]
struct Shared {
    db: Database,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Commands committed so far.
    durable: Watermark,
}

/// Metadata, MQTT sessions and retained messages in one redb file.
#[derive(Debug)]
pub struct RedbMetadataStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RedbMetadataStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> CoreResult<Self> {
        let db = Database::create(path).map_err(storage_err)?;
        let txn = db.begin_write().map_err(storage_err)?;
        txn.open_table(META).map_err(storage_err)?;
        txn.commit().map_err(storage_err)?;
        let shared = Arc::new(Shared {
            db,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable: Watermark::new("metadata store"),
        });
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("junction-meta".into())
            .spawn(move || writer_loop(&s))
            .map_err(storage_err)?;
        Ok(RedbMetadataStore {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    fn enqueue(&self, commands: Vec<MetaCommand>) -> u64 {
        let mut q = lock(&self.shared.queue);
        q.submitted += commands.len() as u64;
        q.commands.extend(commands);
        let ticket = q.submitted;
        drop(q);
        self.shared.wake.notify_one();
        ticket
    }

    /// Commits what is pending and stops the writer.
    pub fn close(&self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.wake.notify_all();
        if let Some(h) = lock(&self.writer).take() {
            let _ = h.join();
        }
    }
}

impl Drop for RedbMetadataStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl MetadataStore for RedbMetadataStore {
    fn apply(&self, commands: &[MetaCommand]) -> CoreResult<()> {
        let ticket = self.enqueue(commands.to_vec());
        self.shared.durable.wait_blocking(ticket)
    }

    fn submit(&self, commands: Vec<MetaCommand>) {
        self.enqueue(commands);
    }

    async fn sync(&self) -> CoreResult<()> {
        let target = lock(&self.shared.queue).submitted;
        self.shared.durable.wait(target).await
    }

    fn load(&self) -> CoreResult<MetaSnapshot> {
        let txn = self.shared.db.begin_read().map_err(storage_err)?;
        let t = txn.open_table(META).map_err(storage_err)?;
        let mut snap = MetaSnapshot::default();
        for item in t.iter().map_err(storage_err)? {
            let (k, v) = item.map_err(storage_err)?;
            snapshot_entry(&mut snap, k.value(), v.value());
        }
        Ok(snap)
    }
}

fn commit(db: &Database, commands: &[MetaCommand]) -> CoreResult<()> {
    let txn = db.begin_write().map_err(storage_err)?;
    {
        let mut t = txn.open_table(META).map_err(storage_err)?;
        for c in commands {
            apply_one(&mut t, c)?;
        }
    }
    txn.commit().map_err(storage_err)
}

fn writer_loop(shared: &Shared) {
    loop {
        let mut q = lock(&shared.queue);
        while q.commands.is_empty() && !q.shutdown {
            q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        if q.commands.is_empty() {
            return;
        }
        let commands = std::mem::take(&mut q.commands);
        let ticket = q.submitted;
        drop(q);
        match commit(&shared.db, &commands) {
            Ok(()) => shared.durable.advance(ticket),
            Err(e) => {
                tracing::error!(error = %e, "metadata commit failed; durable changes are refused from now on");
                shared.durable.fail();
                return;
            }
        }
    }
}
