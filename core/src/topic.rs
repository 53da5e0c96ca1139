//! Topic matching with RabbitMQ's semantics, as a trie of binding-key words.
//!
//! Keys and patterns are split on `.`; the empty string has no words. In a pattern `*` matches
//! exactly one word and `#` zero or more words.

use std::collections::HashMap;

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
    children: HashMap<Box<str>, Node<T>>,
    values: Vec<T>,
    /// Whether `children` holds a `#` / a `*` child: matching skips those lookups when not.
    has_hash: bool,
    has_star: bool,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            values: Vec::new(),
            has_hash: false,
            has_star: false,
        }
    }
}

impl<T> Node<T> {
    fn wildcard(&self, present: bool, w: &str) -> Option<&Node<T>> {
        if present {
            self.children.get(w)
        } else {
            None
        }
    }

    fn note_children(&mut self) {
        self.has_hash = self.children.contains_key("#");
        self.has_star = self.children.contains_key("*");
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
            node.has_hash |= w == "#";
            node.has_star |= w == "*";
            node = node.children.entry(w.into()).or_default();
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
                let Some(child) = node.children.get_mut(*w) else {
                    return false;
                };
                let removed = Self::remove_at(child, rest, value);
                if child.values.is_empty() && child.children.is_empty() {
                    node.children.remove(*w);
                    node.note_children();
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
                !(c.values.is_empty() && c.children.is_empty())
            });
            node.note_children();
        }
        let mut removed = 0;
        walk(&mut self.root, keep, &mut removed);
        self.len -= removed;
    }

    /// Number of (pattern, value) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` for each value whose pattern matches `key` (a value bound under several matching
    /// patterns is reported once per pattern; callers dedupe by destination).
    pub fn matches(&self, key: &str, f: &mut impl FnMut(&T)) {
        // Keys of up to INLINE words are split on the stack.
        const INLINE: usize = 16;
        let n = if key.is_empty() {
            0
        } else {
            key.bytes().filter(|&b| b == b'.').count() + 1
        };
        if n <= INLINE {
            let mut ws = [""; INLINE];
            for (slot, w) in ws.iter_mut().zip(key.split('.')) {
                *slot = w;
            }
            Self::match_at(&self.root, &ws[..n], f);
        } else {
            Self::match_at(&self.root, &words(key), f);
        }
    }

    fn match_at(node: &Node<T>, ws: &[&str], f: &mut impl FnMut(&T)) {
        if let Some(hash) = node.wildcard(node.has_hash, "#") {
            // `#` swallows zero or more words.
            for skip in 0..=ws.len() {
                Self::match_at(hash, &ws[skip..], f);
            }
        }
        match ws.split_first() {
            None => node.values.iter().for_each(&mut *f),
            Some((w, rest)) => {
                if let Some(star) = node.wildcard(node.has_star, "*") {
                    Self::match_at(star, rest, f);
                }
                // A literal `*`/`#` word in a key is met only by the wildcard branches.
                if *w != "*" && *w != "#" {
                    if let Some(child) = node.children.get(*w) {
                        Self::match_at(child, rest, f);
                    }
                }
            }
        }
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
        assert!(t.root.children.is_empty());
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
            let mut got = matching(&t, &key);
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
