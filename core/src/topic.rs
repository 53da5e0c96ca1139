//! Topic matching with RabbitMQ's semantics, as a trie of binding-key words.
//!
//! Keys and patterns are split on `.`; the empty string has no words. In a pattern `*` matches
//! exactly one word and `#` zero or more words.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The most words a routing key or binding pattern may have: Mosquitto's topic hierarchy limit.
/// Longer ones are refused where they enter (a publish, a bind, an MQTT topic or filter).
pub const MAX_WORDS: usize = 200;

/// The longest routing key or binding pattern, in bytes (MQTT's own topic limit).
pub const MAX_KEY_BYTES: usize = 65_535;

/// Checks a routing key or binding pattern against [`MAX_WORDS`] and [`MAX_KEY_BYTES`]; the
/// error names the limit that was passed.
pub fn check_limits(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "routing key of {} bytes exceeds the limit of {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    // A key shorter than MAX_WORDS bytes cannot have more words than that.
    if key.len() >= MAX_WORDS {
        let n = key.bytes().filter(|&b| b == b'.').count() + 1;
        if n > MAX_WORDS {
            return Err(format!(
                "routing key of {n} words exceeds the limit of {MAX_WORDS}"
            ));
        }
    }
    Ok(())
}

/// Splits a routing key or binding pattern into words as RabbitMQ does.
pub fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// A trie from binding patterns to values of type `T`.
#[derive(Debug)]
pub struct TopicTrie<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug)]
struct Node<T> {
    /// Children by literal word.
    children: HashMap<Box<str>, Node<T>>,
    /// The `#` and `*` children, outside the map: matching meets them at every step.
    hash: Option<Box<Node<T>>>,
    star: Option<Box<Node<T>>>,
    values: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            hash: None,
            star: None,
            values: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.children.is_empty()
            && self.hash.is_none()
            && self.star.is_none()
    }

    /// The child for word `w`, if there is one.
    fn child_mut(&mut self, w: &str) -> Option<&mut Node<T>> {
        match w {
            "#" => self.hash.as_deref_mut(),
            "*" => self.star.as_deref_mut(),
            _ => self.children.get_mut(w),
        }
    }

    /// The child for word `w`, made if absent.
    fn child_or_new(&mut self, w: &str) -> &mut Node<T> {
        match w {
            "#" => self.hash.get_or_insert_with(Box::default),
            "*" => self.star.get_or_insert_with(Box::default),
            _ => self.children.entry(w.into()).or_default(),
        }
    }

    /// Drops the child for word `w`.
    fn drop_child(&mut self, w: &str) {
        match w {
            "#" => self.hash = None,
            "*" => self.star = None,
            _ => {
                self.children.remove(w);
            }
        }
    }
}

impl<T> Default for TopicTrie<T> {
    fn default() -> Self {
        TopicTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T: PartialEq> TopicTrie<T> {
    /// Adds `value` under `pattern`; a value already there is not added twice.
    pub fn insert(&mut self, pattern: &str, value: T) -> bool {
        let mut node = &mut self.root;
        for w in words(pattern) {
            node = node.child_or_new(w);
        }
        if node.values.contains(&value) {
            return false;
        }
        node.values.push(value);
        self.len += 1;
        true
    }

    /// Removes `value` from under `pattern`, pruning empty branches.
    pub fn remove(&mut self, pattern: &str, value: &T) -> bool {
        let ws = words(pattern);
        let removed = Self::remove_at(&mut self.root, &ws, value);
        if removed {
            self.len -= 1;
        }
        removed
    }

    fn remove_at(node: &mut Node<T>, ws: &[&str], value: &T) -> bool {
        match ws.split_first() {
            None => match node.values.iter().position(|v| v == value) {
                Some(i) => {
                    node.values.remove(i);
                    true
                }
                None => false,
            },
            Some((w, rest)) => {
                let Some(child) = node.child_mut(w) else {
                    return false;
                };
                let removed = Self::remove_at(child, rest, value);
                if child.is_empty() {
                    node.drop_child(w);
                }
                removed
            }
        }
    }

    /// Removes every value for which `drop` holds.
    pub fn retain(&mut self, keep: &mut impl FnMut(&T) -> bool) {
        fn walk<T>(node: &mut Node<T>, keep: &mut impl FnMut(&T) -> bool, removed: &mut usize) {
            let before = node.values.len();
            node.values.retain(|v| keep(v));
            *removed += before - node.values.len();
            node.children.retain(|_, c| {
                walk(c, keep, removed);
                !c.is_empty()
            });
            for wild in [&mut node.hash, &mut node.star] {
                if let Some(c) = wild {
                    walk(c, keep, removed);
                    if c.is_empty() {
                        *wild = None;
                    }
                }
            }
        }
        let mut removed = 0;
        walk(&mut self.root, keep, &mut removed);
        self.len -= removed;
    }

    /// Number of (pattern, value) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no pattern is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` for each value whose pattern matches `key`, each (pattern, value) entry at most
    /// once (a value bound under several matching patterns comes once per pattern; callers dedupe
    /// by destination).
    ///
    /// The walk is linear in (words of `key` × nodes of the trie) whatever the patterns: a `#`
    /// node is entered at most once per key position (see [`Seen`]), so hostile patterns such
    /// as `#.#.#.#.z` cannot make it exponential.
    pub fn matches(&self, key: &str, f: &mut impl FnMut(&T)) {
        self.walk(key, f);
    }

    /// Matches `key` as [`matches`](Self::matches) does; returns the number of nodes visited.
    fn walk(&self, key: &str, f: &mut impl FnMut(&T)) -> usize {
        // Keys of up to INLINE words are split on the stack.
        const INLINE: usize = 16;
        let n = if key.is_empty() {
            0
        } else {
            key.bytes().filter(|&b| b == b'.').count() + 1
        };
        let mut walk = Walk {
            seen: Seen::default(),
            steps: 0,
        };
        if n <= INLINE {
            let mut ws = [""; INLINE];
            for (slot, w) in ws.iter_mut().zip(key.split('.')) {
                *slot = w;
            }
            walk.at(&self.root, &ws[..n], 0, f);
        } else {
            walk.at(&self.root, &words(key), 0, f);
        }
        walk.steps
    }
}

/// One match of a key against the trie: the `#` nodes already entered at each position.
struct Walk {
    seen: Seen,
    /// Nodes visited, for the tests that bound the work.
    steps: usize,
}

impl Walk {
    /// Matches the words `ws[pos..]` from `node`.
    fn at<T>(&mut self, node: &Node<T>, ws: &[&str], pos: usize, f: &mut impl FnMut(&T)) {
        self.steps += 1;
        if let Some(hash) = &node.hash {
            self.hash(hash, ws, pos, f);
        }
        match ws.get(pos) {
            None => node.values.iter().for_each(&mut *f),
            Some(w) => {
                if let Some(star) = &node.star {
                    self.at(star, ws, pos + 1, f);
                }
                // A literal `*`/`#` word in a key is met only by the wildcard branches.
                if *w != "*" && *w != "#" {
                    if let Some(child) = node.children.get(*w) {
                        self.at(child, ws, pos + 1, f);
                    }
                }
            }
        }
    }

    /// Enters the `#` node `hash` with `ws[..pos]` consumed: it swallows zero words (continue
    /// from it at `pos`) or one more (enter it again at `pos + 1`). Each (node, position) is
    /// walked once; a second path to it would report the same values again. The positions a
    /// node was entered at are always a run to the key's end (entering at `p` walks on from
    /// `p` until a position entered before), so one number per node remembers them.
    fn hash<T>(&mut self, hash: &Node<T>, ws: &[&str], pos: usize, f: &mut impl FnMut(&T)) {
        let Some(until) = self
            .seen
            .enter(hash as *const Node<T> as usize, pos, ws.len() + 1)
        else {
            return;
        };
        // The self-loop runs as a loop, so the stack grows with the trie's depth, not the key.
        for p in pos..until {
            self.at(hash, ws, p, f);
        }
    }
}

/// For each `#` node a walk has entered, the lowest key position it was entered at. Most keys
/// meet few `#` nodes, so a short list is searched first; many move to a hash map.
#[derive(Default)]
enum Seen {
    #[default]
    Empty,
    Few(Vec<(usize, usize)>),
    Many(HashMap<usize, usize, BuildHasherDefault<AddressHasher>>),
}

impl Seen {
    const FEW: usize = 16;

    /// Node `node` is entered at `pos`: returns the end (exclusive) of the positions not walked
    /// from it yet (`end` when it is new), or None when `pos` was walked already.
    fn enter(&mut self, node: usize, pos: usize, end: usize) -> Option<usize> {
        let lowest = match self {
            Seen::Empty => {
                *self = Seen::Few(vec![(node, pos)]);
                return Some(end);
            }
            Seen::Few(v) => match v.iter().position(|(n, _)| *n == node) {
                Some(i) => &mut v[i].1,
                None if v.len() < Self::FEW => {
                    v.push((node, pos));
                    return Some(end);
                }
                None => {
                    let mut map: HashMap<_, _, BuildHasherDefault<AddressHasher>> =
                        v.drain(..).collect();
                    map.insert(node, pos);
                    *self = Seen::Many(map);
                    return Some(end);
                }
            },
            Seen::Many(map) => match map.entry(node) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(pos);
                    return Some(end);
                }
            },
        };
        if pos >= *lowest {
            return None;
        }
        let until = *lowest;
        *lowest = pos;
        Some(until)
    }
}

/// Hashes a node's address: ours, not a client's, so a multiply-mix is enough (the standard
/// library's seeded hasher would double the walk's cost).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_usize(usize::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(26) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The plain recursive matcher the trie is checked against.
pub fn reference_match(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|i| go(rest, &k[i..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((w, rest)) => k.first() == Some(w) && go(rest, &k[1..]),
        }
    }
    go(&words(pattern), &words(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matching(trie: &TopicTrie<u32>, key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        trie.matches(key, &mut |v| out.push(*v));
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn rabbitmq_examples() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.c", false),
            ("a.#.c", "a.c", true),
            ("a.#.c", "a.b.x.c", true),
            ("a.#", "a", true),
            ("#", "", true),
            ("#", "a.b", true),
            ("", "", true),
            ("", "a", false),
            ("*", "", false),
            ("a..b", "a..b", true),
            ("a.*.b", "a..b", true),
            ("#.#", "x", true),
            ("*.#.*", "a", false),
            ("*.#.*", "a.b", true),
            ("a.#.#.b", "a.b", true),
        ];
        for (p, k, expect) in cases {
            assert_eq!(reference_match(p, k), expect, "reference {p} vs {k}");
            let mut t = TopicTrie::default();
            t.insert(p, 1u32);
            assert_eq!(!matching(&t, k).is_empty(), expect, "trie {p} vs {k}");
        }
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut t = TopicTrie::default();
        assert!(t.insert("a.b", 1u32));
        assert!(!t.insert("a.b", 1));
        assert!(t.insert("a.#", 2));
        assert_eq!(t.len(), 2);
        assert!(t.remove("a.b", &1));
        assert!(!t.remove("a.b", &1));
        assert_eq!(matching(&t, "a.b"), vec![2]);
        t.retain(&mut |v| *v != 2);
        assert!(t.is_empty());
        assert!(t.root.is_empty());
    }

    /// Nodes in the trie, for the bound on a walk's work.
    fn nodes<T>(n: &Node<T>) -> usize {
        1 + n.children.values().map(nodes).sum::<usize>()
            + n.hash.as_deref().map_or(0, nodes)
            + n.star.as_deref().map_or(0, nodes)
    }

    #[test]
    fn hostile_patterns_match_in_linear_work() {
        let mut t = TopicTrie::default();
        // Twenty `#` words before a literal that never comes, and variants around it.
        let hashes = vec!["#"; 20].join(".");
        t.insert(&format!("{hashes}.z"), 1u32);
        t.insert(&format!("#.a.{hashes}.a.#.z"), 2);
        t.insert(&vec!["#.*"; 30].join("."), 3);
        t.insert("#", 4);
        let key = vec!["a"; MAX_WORDS].join(".");
        let mut got = Vec::new();
        let steps = t.walk(&key, &mut |v| got.push(*v));
        got.sort();
        assert_eq!(got, vec![3, 4]);
        // Every node is entered at most once per key position (plus the root's first visit).
        let bound = nodes(&t.root) * (MAX_WORDS + 1) * 3;
        assert!(steps <= bound, "{steps} steps for a bound of {bound}");
        // With the literal at the end, the 20-hash pattern matches.
        let key = format!("{key}.z");
        let mut got = Vec::new();
        t.walk(&key, &mut |v| got.push(*v));
        got.sort();
        assert_eq!(got, vec![1, 2, 3, 4]);
    }

    #[test]
    fn each_matching_pattern_is_reported_once() {
        let mut t = TopicTrie::default();
        t.insert("#.#.#", 1u32);
        t.insert("a.#.#.b", 2);
        let mut got = Vec::new();
        t.matches("a.x.b.b", &mut |v| got.push(*v));
        got.sort();
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn key_limits() {
        assert!(check_limits(&vec!["a"; MAX_WORDS].join(".")).is_ok());
        let long = vec!["a"; MAX_WORDS + 1].join(".");
        assert!(check_limits(&long).unwrap_err().contains("201 words"));
        assert!(check_limits(&"x".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(check_limits(&".".repeat(MAX_WORDS)).is_err());
        assert!(check_limits(&".".repeat(MAX_WORDS - 1)).is_ok());
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("".to_string()),
            Just("*".to_string()),
            Just("#".to_string()),
        ]
    }

    fn key_word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("".to_string())
        ]
    }

    proptest! {
        #[test]
        fn trie_agrees_with_reference(
            patterns in proptest::collection::vec(proptest::collection::vec(word(), 0..5), 1..8),
            key in proptest::collection::vec(key_word(), 0..20),
            removed in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let key = key.join(".");
            let mut t = TopicTrie::default();
            let patterns: Vec<String> = patterns.into_iter().map(|p| p.join(".")).collect();
            for (i, p) in patterns.iter().enumerate() {
                t.insert(p, i as u32);
            }
            // Removals prune branches, wildcard ones included.
            for (i, p) in patterns.iter().enumerate() {
                if removed[i] {
                    t.remove(p, &(i as u32));
                }
            }
            let expected: Vec<u32> = patterns
                .iter()
                .enumerate()
                .filter(|(i, p)| !removed[*i] && reference_match(p, &key))
                .map(|(i, _)| i as u32)
                .collect();
            // Each matching entry is reported exactly once.
            let mut got = Vec::new();
            t.matches(&key, &mut |v| got.push(*v));
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
