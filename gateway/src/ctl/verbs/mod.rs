//! Every verb `junction ctl` knows: its usage and help (one table, which `help` prints and
//! which checks the number of arguments), and where it is carried out: `access` (users,
//! vhosts, permissions, limits), `objects` (queues, exchanges, bindings, connections,
//! channels, consumers, policies), `node` (status, health, the app switch, logs,
//! definitions).

mod access;
mod node;
mod objects;

use super::{CtlError, Ctx};

/// One verb.
pub(crate) struct Verb {
    /// Its name.
    pub(crate) name: &'static str,
    /// Where `help` lists it.
    group: &'static str,
    /// Its arguments, as usage shows them.
    usage: &'static str,
    /// The fewest positional arguments.
    min: usize,
    /// The most (None: any number).
    max: Option<usize>,
    /// What it does.
    about: &'static str,
}

impl Verb {
    /// A usage error unless `args` has a number of arguments the verb takes.
    pub(crate) fn check_arity(&self, args: &[String]) -> Result<(), CtlError> {
        let n = args.len();
        let problem = if n < self.min {
            "not enough arguments"
        } else if self.max.is_some_and(|m| n > m) {
            "too many arguments"
        } else {
            return Ok(());
        };
        Err(CtlError::Usage(format!(
            "{problem}.\nUsage: junction ctl {} {}",
            self.name, self.usage
        )))
    }
}

const fn verb(
    name: &'static str,
    group: &'static str,
    usage: &'static str,
    (min, max): (usize, Option<usize>),
    about: &'static str,
) -> Verb {
    Verb {
        name,
        group,
        usage,
        min,
        max,
        about,
    }
}

const NONE: (usize, Option<usize>) = (0, Some(0));
const fn exactly(n: usize) -> (usize, Option<usize>) {
    (n, Some(n))
}
const fn between(a: usize, b: usize) -> (usize, Option<usize>) {
    (a, Some(b))
}
const fn at_least(n: usize) -> (usize, Option<usize>) {
    (n, None)
}

/// Every verb, in the order `help` lists them.
pub(crate) const VERBS: &[Verb] = &[
    verb("help", "Help", "[<verb>]", between(0, 1), "Lists the verbs, or explains one"),
    verb("version", "Help", "", NONE, "Prints the version of junction ctl"),
    verb("status", "Nodes", "", NONE, "Uptime, listeners, connections per protocol, queues, messages, memory, disk, alarms and the store"),
    verb("ping", "Nodes", "", NONE, "Checks that the node answers"),
    verb("await_startup", "Nodes", "", NONE, "Waits (up to --timeout, default 300 s) until the node accepts client connections"),
    verb("start_app", "Nodes", "", NONE, "Starts accepting client connections again (after stop_app)"),
    verb("stop_app", "Nodes", "", NONE, "Closes every client listener and connection; the process, its storage and the management API stay up"),
    verb("environment", "Nodes", "", NONE, "Prints the configuration in force (passwords hidden)"),
    verb("report", "Nodes", "", NONE, "Status, then every listing of every vhost, for a support request"),
    verb("set_log_level", "Nodes", "<level>", exactly(1), "Sets the log level while running: debug, info, warning, error, critical, none, or a RUST_LOG filter"),
    verb("set_vm_memory_high_watermark", "Nodes", "<fraction> | absolute <bytes>[kB|KiB|MB|MiB|GB|GiB]", between(1, 2), "Sets the memory high watermark while running (publishers are blocked above it)"),
    verb("reload_certificates", "Nodes", "", NONE, "Reads the [tls] certificate, key and CA files again: new TLS connections use them, open ones stay"),
    verb("set_disk_free_limit", "Nodes", "<bytes>[kB|KiB|MB|MiB|GB|GiB]", exactly(1), "Sets the free disk space below which publishers are blocked, while running"),
    verb("list_users", "Users", "", NONE, "Lists users and their tags"),
    verb("add_user", "Users", "<username> <password>", exactly(2), "Creates a user (with no permissions)"),
    verb("delete_user", "Users", "<username>", exactly(1), "Deletes a user"),
    verb("change_password", "Users", "<username> <password>", exactly(2), "Changes a user's password"),
    verb("set_user_tags", "Users", "<username> <tag> [...]", at_least(1), "Sets a user's tags (none given: no tags)"),
    verb("authenticate_user", "Users", "<username> <password>", exactly(2), "Checks a user's password"),
    verb("list_vhosts", "Virtual hosts", "[<column> ...]", at_least(0), "Lists vhosts (columns: name description tags tracing default_queue_type)"),
    verb("add_vhost", "Virtual hosts", "<vhost> [--description <d>] [--tags <t,...>] [--default-queue-type <type>]", exactly(1), "Creates a vhost"),
    verb("delete_vhost", "Virtual hosts", "<vhost>", exactly(1), "Deletes a vhost and everything in it"),
    verb("set_vhost_limits", "Virtual hosts", "[-p <vhost>] <definition>", exactly(1), "Sets vhost limits, e.g. '{\"max-connections\": 100, \"max-queues\": 10}' (a negative value: no limit)"),
    verb("clear_vhost_limits", "Virtual hosts", "[-p <vhost>]", NONE, "Clears a vhost's limits"),
    verb("list_vhost_limits", "Virtual hosts", "[-p <vhost>]", NONE, "Prints a vhost's limits"),
    verb("set_permissions", "Access control", "[-p <vhost>] <username> <conf> <write> <read>", exactly(4), "Sets a user's permissions in a vhost (regular expressions)"),
    verb("clear_permissions", "Access control", "[-p <vhost>] <username>", exactly(1), "Revokes a user's permissions in a vhost"),
    verb("list_permissions", "Access control", "[-p <vhost>]", NONE, "Lists permissions in a vhost"),
    verb("list_user_permissions", "Access control", "<username>", exactly(1), "Lists a user's permissions in every vhost"),
    verb("set_topic_permissions", "Access control", "[-p <vhost>] <username> <exchange> <write> <read>", exactly(4), "Sets a user's topic permissions on an exchange"),
    verb("clear_topic_permissions", "Access control", "[-p <vhost>] <username> [<exchange>]", between(1, 2), "Revokes a user's topic permissions"),
    verb("list_topic_permissions", "Access control", "[-p <vhost>]", NONE, "Lists topic permissions in a vhost"),
    verb("list_user_topic_permissions", "Access control", "<username>", exactly(1), "Lists a user's topic permissions"),
    verb("set_user_limits", "Access control", "<username> <definition>", exactly(2), "Sets user limits, e.g. '{\"max-connections\": 5, \"max-channels\": 20}'"),
    verb("clear_user_limits", "Access control", "<username> <limit>|all", exactly(2), "Clears one user limit, or all"),
    verb("list_user_limits", "Access control", "[--user <username>]", NONE, "Prints user limits"),
    verb("list_queues", "Monitoring", "[-p <vhost>] [--online|--offline|--local] [<column> ...]", at_least(0), "Lists queues (columns: name messages messages_ready messages_unacknowledged consumers durable auto_delete exclusive arguments memory policy state type)"),
    verb("list_exchanges", "Monitoring", "[-p <vhost>] [<column> ...]", at_least(0), "Lists exchanges (columns: name type durable auto_delete internal arguments policy)"),
    verb("list_bindings", "Monitoring", "[-p <vhost>] [<column> ...]", at_least(0), "Lists bindings (columns: source_name source_kind destination_name destination_kind routing_key arguments)"),
    verb("list_connections", "Monitoring", "[<column> ...]", at_least(0), "Lists client connections of every protocol (columns: name user vhost protocol state channels peer_host peer_port host port client_properties connected_at recv_oct send_oct)"),
    verb("list_channels", "Monitoring", "[<column> ...]", at_least(0), "Lists channels (columns: pid name connection number user vhost consumer_count messages_unacknowledged prefetch_count)"),
    verb("list_consumers", "Monitoring", "[-p <vhost>] [<column> ...]", at_least(0), "Lists consumers (columns: queue_name channel_pid consumer_tag ack_required prefetch_count active arguments)"),
    verb("close_connection", "Operations", "<connection name> <explanation>", exactly(2), "Closes a client connection with the protocol's close, giving the explanation"),
    verb("close_all_connections", "Operations", "[-p <vhost> | --global] <explanation>", exactly(1), "Closes every client connection of a vhost (or, with --global, of the node)"),
    verb("purge_queue", "Operations", "[-p <vhost>] <queue>", exactly(1), "Removes every ready message of a queue"),
    verb("delete_queue", "Operations", "[-p <vhost>] <queue> [--if-empty] [--if-unused]", exactly(1), "Deletes a queue"),
    verb("set_policy", "Policies", "[-p <vhost>] [--priority <n>] [--apply-to <queues|exchanges|all>] <name> <pattern> <definition>", exactly(3), "Sets a policy"),
    verb("clear_policy", "Policies", "[-p <vhost>] <name>", exactly(1), "Clears a policy"),
    verb("list_policies", "Policies", "[-p <vhost>]", NONE, "Lists policies"),
    verb("export_definitions", "Definitions", "<file>|-", exactly(1), "Writes every definition (users, vhosts, permissions, queues, exchanges, bindings, policies) as RabbitMQ's JSON"),
    verb("import_definitions", "Definitions", "<file>|-", exactly(1), "Imports definitions from a RabbitMQ JSON file"),
];

/// The verb called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

/// Prints the list of verbs (`None`) or one verb's help; false when there is no such verb.
pub(crate) fn print_help(verb: Option<&str>) -> bool {
    let general = "General options: [-n|--node <url|name@host>] [--username <u> --password <p>] \
                   [-p|--vhost <vhost>] [-q|--quiet] [-s|--silent] [--no-table-headers] \
                   [--formatter json] [-t|--timeout <seconds>] [--config <file>] [--data-dir <dir>]";
    match verb {
        None => {
            println!("Usage: junction ctl [options] <verb> [<arguments>]\n\n{general}\n");
            let mut group = "";
            for v in VERBS {
                if v.group != group {
                    group = v.group;
                    println!("{group}:");
                }
                println!("   {:<28} {}", v.name, v.about);
            }
            println!("\nUse 'junction ctl help <verb>' to learn about one verb.");
            true
        }
        Some(name) => match find(name) {
            Some(v) => {
                println!(
                    "Usage: junction ctl {} {}\n\n{}.\n\n{general}",
                    v.name, v.usage, v.about
                );
                true
            }
            None => false,
        },
    }
}

/// Carries out `verb`.
pub(crate) async fn run(ctx: &Ctx, verb: &Verb) -> Result<(), CtlError> {
    let args = &ctx.inv.args;
    if let Some(done) = access::run(ctx, verb.name, args).await {
        return done;
    }
    if let Some(done) = objects::run(ctx, verb.name, args).await {
        return done;
    }
    if let Some(done) = node::run(ctx, verb.name, args).await {
        return done;
    }
    Err(CtlError::Usage(format!("unknown verb '{}'", verb.name)))
}

/// The columns a listing prints: those asked for (each one it knows), else its defaults.
pub(crate) fn columns(
    asked: &[String],
    defaults: &[&str],
    known: &[&str],
) -> Result<Vec<String>, CtlError> {
    if asked.is_empty() {
        return Ok(defaults.iter().map(|c| c.to_string()).collect());
    }
    for c in asked {
        if !known.contains(&c.as_str()) {
            return Err(CtlError::Usage(format!(
                "Invalid column: {c}. Valid columns: {}",
                known.join(", ")
            )));
        }
    }
    Ok(asked.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_has_one_entry_and_help() {
        for (i, v) in VERBS.iter().enumerate() {
            assert!(!v.about.is_empty(), "{}", v.name);
            assert!(
                VERBS[i + 1..].iter().all(|w| w.name != v.name),
                "{} twice",
                v.name
            );
        }
    }

    #[test]
    fn arity_is_checked() {
        let add = find("add_user").unwrap();
        assert!(add.check_arity(&["a".into(), "b".into()]).is_ok());
        assert!(matches!(
            add.check_arity(&["a".into()]),
            Err(CtlError::Usage(_))
        ));
        let tags = find("set_user_tags").unwrap();
        assert!(tags.check_arity(&vec!["u".to_string(); 5]).is_ok());
    }

    #[test]
    fn unknown_columns_are_usage_errors() {
        let known = ["name", "messages"];
        assert_eq!(
            columns(&[], &["name"], &known).unwrap(),
            vec!["name".to_string()]
        );
        assert!(columns(&["bogus".into()], &["name"], &known).is_err());
    }
}
