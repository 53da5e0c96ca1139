//! The memory window: paged-out entries read back from the message store a run at a time.

use super::*;

impl Queue {
    /// Reads the paged-out messages among the first ones of `level` back from the store.
    /// Ones the store cannot give back are dropped (and logged): the head always moves on.
    pub(super) fn page_in(&self, st: &mut State, level: usize, after: &mut After) {
        let run = self
            .window
            .map_or(PAGE_IN_RUN, |w| w.messages.clamp(1, PAGE_IN_RUN));
        let paged = |transient: bool| -> Vec<u64> {
            st.levels[level]
                .iter()
                .take(run)
                .filter(|e| e.msg.is_none() && e.paged_transient == transient)
                .map(|e| e.seq)
                .collect()
        };
        let (seqs, transient_seqs) = (paged(false), paged(true));
        let read = |id: u64, seqs: &[u64]| match &self.store {
            Some(store) if !seqs.is_empty() => store.read(id, seqs),
            _ => vec![None; seqs.len()],
        };
        let mut found = read(self.store_id, &seqs).into_iter();
        let mut found_transient = read(self.transient_store_id, &transient_seqs).into_iter();
        let (mut loaded, mut loaded_bytes, mut lost) = (0, 0, 0);
        for e in st.levels[level].iter_mut().take(run) {
            if e.msg.is_none() {
                let got = if e.paged_transient {
                    found_transient.next().flatten()
                } else {
                    found.next().flatten()
                };
                match got {
                    Some(m) => {
                        e.msg = Some(m);
                        loaded += 1;
                        loaded_bytes += e.size as usize;
                        if e.paged_transient {
                            // Back in memory: the store's copy has served its purpose.
                            e.paged_transient = false;
                            after.settled_transient.push(e.seq);
                        }
                    }
                    None => lost += 1,
                }
            }
        }
        st.loaded += loaded;
        st.loaded_bytes += loaded_bytes;
        if lost == 0 {
            return;
        }
        tracing::error!(
            queue = %self.def.name,
            lost,
            "stored messages could not be read back and were dropped"
        );
        let mut i = 0;
        for _ in 0..run {
            match st.levels[level].get(i) {
                Some(e) if e.msg.is_none() => {
                    if let Some(e) = st.levels[level].remove(i) {
                        st.count_out(&e);
                        self.settle_entry(&e, after);
                    }
                }
                Some(_) => i += 1,
                None => break,
            }
        }
    }

    /// Takes the head message, reading it back from the store if it was paged out.
    pub(super) fn take_head(
        &self,
        st: &mut State,
        after: &mut After,
    ) -> Option<(Entry, Arc<Message>)> {
        loop {
            let level = st.head_level()?;
            if st.levels[level].front().is_some_and(|e| e.msg.is_none()) {
                self.page_in(st, level, after);
                continue;
            }
            let e = st.pop_front(level)?;
            let m = e.msg.clone()?;
            return Some((e, m));
        }
    }
}
