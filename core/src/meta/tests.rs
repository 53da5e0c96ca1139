//! The metadata state machine against a model, replay fidelity, and the live path's locks
//! while the metadata store is stuck.

use super::*;
use crate::exchange::{Binding, Destination, ExchangeDef, ExchangeKind};
use crate::queue::QueueDef;
use crate::storage::{MemoryMetadataStore, MetadataStore};
use crate::{Broker, BrokerOptions};
use async_trait::async_trait;
use proptest::prelude::*;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

const NAMES: [&str; 3] = ["a", "b", "c"];

fn queue(name: &str, durable: bool) -> QueueDef {
    QueueDef {
        durable,
        ..QueueDef::new(name)
    }
}

fn exchange(name: &str, durable: bool) -> ExchangeDef {
    ExchangeDef {
        durable,
        ..ExchangeDef::new(name, ExchangeKind::Topic)
    }
}

fn binding(source: &str, queue: &str, key: &str) -> Binding {
    Binding {
        source: source.into(),
        destination: Destination::Queue(queue.into()),
        routing_key: key.into(),
        arguments: Default::default(),
    }
}

/// A random command over a small name space, so commands collide often.
fn command() -> impl Strategy<Value = MetaCommand> {
    let vhost = prop::sample::select(vec!["/", "v2"]).prop_map(String::from);
    let name = prop::sample::select(NAMES.to_vec()).prop_map(String::from);
    prop_oneof![
        vhost.clone().prop_map(MetaCommand::PutVHost),
        vhost.clone().prop_map(MetaCommand::DeleteVHost),
        (vhost.clone(), name.clone(), any::<bool>()).prop_map(|(vhost, n, d)| {
            MetaCommand::PutExchange {
                vhost,
                def: exchange(&format!("x{n}"), d),
            }
        }),
        (vhost.clone(), name.clone()).prop_map(|(vhost, n)| MetaCommand::DeleteExchange {
            vhost,
            name: format!("x{n}"),
        }),
        (vhost.clone(), name.clone(), any::<bool>()).prop_map(|(vhost, n, d)| {
            MetaCommand::PutQueue {
                vhost,
                def: queue(&n, d),
                owner: None,
            }
        }),
        (vhost.clone(), name.clone())
            .prop_map(|(vhost, name)| MetaCommand::DeleteQueue { vhost, name }),
        (vhost.clone(), name.clone(), name.clone()).prop_map(|(vhost, x, q)| {
            MetaCommand::PutBinding {
                vhost,
                binding: binding(&format!("x{x}"), &q, "k"),
            }
        }),
        (vhost, name.clone(), name).prop_map(|(vhost, x, q)| MetaCommand::DeleteBinding {
            vhost,
            binding: binding(&format!("x{x}"), &q, "k"),
        }),
    ]
}

/// Every binding leads from an exchange that exists to a queue that exists.
fn bindings_are_whole(s: &MetaState) -> bool {
    s.vhost_names().all(|v| {
        let v = s.vhost(v).expect("listed");
        v.bindings.values().flatten().all(|b| {
            v.exchanges.contains_key(&b.source) && v.queues.contains_key(b.destination.name())
        })
    })
}

proptest! {
    /// Whatever the commands, the state stays whole, a refused command changes nothing, and
    /// replaying the durable part (what a restart recovers) gives back exactly that part.
    #[test]
    fn apply_keeps_state_whole_and_replays(cmds in prop::collection::vec(command(), 1..60)) {
        let mut state = MetaState::new();
        let durable_store = MemoryMetadataStore::default();
        for cmd in &cmds {
            let before = state.clone();
            match state.apply(cmd) {
                Ok(Outcome::Applied { durable }) => {
                    if durable {
                        durable_store.apply(std::slice::from_ref(cmd)).expect("store applies");
                    }
                }
                Ok(Outcome::Unchanged) => prop_assert_eq!(&state, &before),
                Err(_) => prop_assert_eq!(&state, &before),
            }
            prop_assert!(bindings_are_whole(&state));
        }
        let snapshot = state.durable_snapshot();
        let mut replayed = MetaState::new();
        for cmd in snapshot.commands() {
            replayed.apply(&cmd).expect("a snapshot replays cleanly");
        }
        let again = replayed.durable_snapshot();
        prop_assert_eq!(format!("{:?}", again), format!("{:?}", snapshot));
        // The store, fed only the durable commands, holds the same durable state.
        let stored = durable_store.load().expect("loads");
        prop_assert_eq!(format!("{:?}", stored), format!("{:?}", snapshot));
    }
}

#[test]
fn redeclaration_is_unchanged_and_an_inequivalent_one_refused() {
    let mut s = MetaState::new();
    assert_eq!(
        s.apply(&MetaCommand::PutVHost("/".into())).unwrap(),
        Outcome::Applied { durable: true }
    );
    let put = |d| MetaCommand::PutQueue {
        vhost: "/".into(),
        def: queue("q", d),
        owner: None,
    };
    assert!(s.apply(&put(true)).unwrap().stored());
    assert_eq!(s.apply(&put(true)).unwrap(), Outcome::Unchanged);
    assert!(s.apply(&put(false)).is_err());
    // A transient queue bound to a durable exchange: the binding is not durable.
    s.apply(&MetaCommand::PutQueue {
        vhost: "/".into(),
        def: queue("t", false),
        owner: Some(7),
    })
    .unwrap();
    let bind = |q: &str| MetaCommand::PutBinding {
        vhost: "/".into(),
        binding: binding("amq.topic", q, "k"),
    };
    assert_eq!(
        s.apply(&bind("t")).unwrap(),
        Outcome::Applied { durable: false }
    );
    assert!(s.apply(&bind("q")).unwrap().stored());
    assert!(s.apply(&bind("nope")).is_err());
    assert!(s
        .apply(&MetaCommand::DeleteExchange {
            vhost: "/".into(),
            name: "amq.topic".into()
        })
        .is_err());
}

/// A metadata store whose writes do not finish until the test lets them: a disk that has
/// stopped answering. `apply` (the blocking call) and `sync` wait for the gate.
#[derive(Debug, Default)]
struct StuckDisk {
    inner: MemoryMetadataStore,
    open: Mutex<bool>,
    opened: Condvar,
    notify: tokio::sync::Notify,
}

impl StuckDisk {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
        self.notify.notify_waiters();
    }
}

#[async_trait]
impl MetadataStore for StuckDisk {
    fn apply(&self, commands: &[MetaCommand]) -> crate::CoreResult<()> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        self.inner.apply(commands)
    }

    fn submit(&self, commands: Vec<MetaCommand>) {
        let _ = self.inner.apply(&commands);
    }

    async fn sync(&self) -> crate::CoreResult<()> {
        loop {
            let wake = self.notify.notified();
            if *self.open.lock().unwrap() {
                return Ok(());
            }
            wake.await;
        }
    }

    fn load(&self) -> crate::CoreResult<crate::storage::MetaSnapshot> {
        self.inner.load()
    }
}

/// Runs `f` on its own thread and waits at most a few seconds for it: a call stuck behind
/// the disk fails the test instead of hanging it.
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{what} waited for the metadata store"))
}

#[tokio::test]
async fn declares_and_publishes_go_on_while_the_metadata_disk_is_stuck() {
    let disk = Arc::new(StuckDisk::default());
    disk.release();
    let broker = Broker::new(BrokerOptions {
        meta: disk.clone(),
        ..BrokerOptions::default()
    })
    .unwrap();
    let vhost = broker.vhost("/").unwrap();
    vhost.declare_queue(queue("work", true), false, 1).unwrap();
    *disk.open.lock().unwrap() = false;

    // Another connection declares, binds and deletes durable queues in a loop while the
    // disk does not answer; a publisher's round trip goes on meanwhile.
    for round in 0..20 {
        let v = vhost.clone();
        let declared = within("queue.declare", move || {
            let name = format!("churn-{round}");
            let d = v.declare_queue(queue(&name, true), false, 2).unwrap();
            v.bind(binding("amq.topic", &name, "k"), Some(2)).unwrap();
            let deleted = v.delete_queue(&name, Some(2), false, false).unwrap();
            d.stored && deleted.stored
        });
        assert!(declared, "a durable declaration is marked for the store");
        let v = vhost.clone();
        let got = within("publish and get", move || {
            v.publish("", crate::vhost::plain_message("", "work", b"ping"))
                .unwrap();
            v.queue("work", None).unwrap().get(true).is_some()
        });
        assert!(got, "the publisher's message came back");
    }
    // The acknowledgement of those declarations waits for the disk, and comes once it answers.
    let sync = tokio::time::timeout(Duration::from_millis(50), broker.sync()).await;
    assert!(sync.is_err(), "sync resolved while the disk was stuck");
    disk.release();
    tokio::time::timeout(Duration::from_secs(5), broker.sync())
        .await
        .expect("sync resolves once the disk answers")
        .unwrap();
    assert!(disk
        .inner
        .load()
        .unwrap()
        .queues
        .iter()
        .all(|(_, q)| q.name == "work"));
}
