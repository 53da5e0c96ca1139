//! rabbitmqctl's command line: options may come before or after the verb (`-p v list_queues`
//! and `list_queues -p v` alike), as `--name value` or `--name=value`; everything else is the
//! verb and its arguments.

use super::CtlError;
use std::collections::{BTreeMap, BTreeSet};

/// Options that take a value, with their one-letter forms.
const VALUED: [(&str, Option<char>); 15] = [
    ("node", Some('n')),
    ("vhost", Some('p')),
    ("timeout", Some('t')),
    ("username", Some('u')),
    ("password", None),
    ("formatter", None),
    ("config", Some('c')),
    ("data-dir", None),
    ("apply-to", None),
    ("priority", None),
    ("user", None),
    ("limit", None),
    ("description", None),
    ("tags", None),
    ("default-queue-type", None),
];

/// Options that are flags, with their one-letter forms.
const FLAGS: [(&str, Option<char>); 11] = [
    ("quiet", Some('q')),
    ("silent", Some('s')),
    ("no-table-headers", None),
    ("longnames", Some('l')),
    ("help", Some('?')),
    ("if-empty", None),
    ("if-unused", None),
    ("offline", None),
    ("online", None),
    ("local", None),
    ("global", None),
];

/// A parsed command line.
#[derive(Debug, Default, Clone)]
pub(crate) struct Invocation {
    /// The verb, if one was given.
    pub(crate) verb: Option<String>,
    /// Its positional arguments.
    pub(crate) args: Vec<String>,
    opts: BTreeMap<String, String>,
    flags: BTreeSet<String>,
}

impl Invocation {
    /// The value of option `name`.
    pub(crate) fn opt(&self, name: &str) -> Option<&str> {
        self.opts.get(name).map(String::as_str)
    }

    /// Whether flag `name` was given.
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }
}

/// Parses `args` (what follows `ctl`).
pub(crate) fn parse(args: &[String]) -> Result<Invocation, CtlError> {
    let mut inv = Invocation::default();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            positional.extend(it.by_ref().cloned());
            break;
        }
        let (name, inline) = if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if a.len() == 2 && a.starts_with('-') {
            let c = a.chars().nth(1).unwrap_or('-');
            let long = VALUED
                .iter()
                .chain(FLAGS.iter())
                .find(|(_, short)| *short == Some(c))
                .map(|(n, _)| n.to_string())
                .ok_or_else(|| CtlError::Usage(format!("unknown option {a}")))?;
            (long, None)
        } else {
            positional.push(a.clone());
            continue;
        };
        if VALUED.iter().any(|(n, _)| *n == name) {
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| CtlError::Usage(format!("option {a} needs a value")))?,
            };
            inv.opts.insert(name, value);
        } else if FLAGS.iter().any(|(n, _)| *n == name) {
            if inline.is_some() {
                return Err(CtlError::Usage(format!("option --{name} takes no value")));
            }
            inv.flags.insert(name);
        } else {
            return Err(CtlError::Usage(format!("unknown option {a}")));
        }
    }
    let mut positional = positional.into_iter();
    inv.verb = positional.next();
    inv.args = positional.collect();
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Invocation {
        parse(&line.split(' ').map(String::from).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn options_before_and_after_the_verb() {
        let a = p("-p v1 list_queues name messages -q");
        assert_eq!(a.verb.as_deref(), Some("list_queues"));
        assert_eq!(a.args, ["name", "messages"]);
        assert_eq!(a.opt("vhost"), Some("v1"));
        assert!(a.flag("quiet"));
        let b = p("set_policy --vhost=v1 lim ^q {} --apply-to queues --priority 3");
        assert_eq!(b.args, ["lim", "^q", "{}"]);
        assert_eq!(b.opt("apply-to"), Some("queues"));
        assert_eq!(b.opt("priority"), Some("3"));
        let c = p("export_definitions -");
        assert_eq!(c.args, ["-"]);
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for line in [
            "list_users --bogus",
            "list_users -x",
            "list_users -p",
            "x --quiet=1",
        ] {
            let args: Vec<String> = line.split(' ').map(String::from).collect();
            assert!(matches!(parse(&args), Err(CtlError::Usage(_))), "{line}");
        }
    }
}
