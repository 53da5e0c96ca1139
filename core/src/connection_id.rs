//! Connection ids that name their node: the top 16 bits are the node's number, the rest count
//! the node's connections. A single node is node 0, so its ids are the plain count; in a
//! cluster an exclusive queue's owner or a session's takeover can name a connection on any
//! node without two nodes handing out the same id.

/// Bits of an id that count a node's connections.
pub const LOCAL_BITS: u32 = 48;

/// The id of connection number `local` of node `node` (`local` wraps at 2^48).
pub fn compose(node: u16, local: u64) -> u64 {
    (u64::from(node) << LOCAL_BITS) | (local & ((1 << LOCAL_BITS) - 1))
}

/// The node a connection id belongs to.
pub fn node_of(id: u64) -> u16 {
    (id >> LOCAL_BITS) as u16
}

/// The connection's number on its node.
pub fn local_of(id: u64) -> u64 {
    id & ((1 << LOCAL_BITS) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_different_nodes_never_collide_and_come_apart_again() {
        for node in [0u16, 1, 7, u16::MAX] {
            for local in [1u64, 2, 1 << 40, (1 << LOCAL_BITS) - 1] {
                let id = compose(node, local);
                assert_eq!((node_of(id), local_of(id)), (node, local));
            }
        }
        assert_ne!(compose(1, 5), compose(2, 5));
        // Node 0's ids are the plain count, as a single node has always numbered them.
        assert_eq!(compose(0, 42), 42);
    }
}
