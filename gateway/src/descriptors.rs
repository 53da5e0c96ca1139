//! File descriptors: the soft limit is raised to the hard one at start (as RabbitMQ's runtime
//! does), and client connections may use all but a reserve, so the stores, listeners and logs
//! never meet EMFILE.

/// Descriptors kept back from clients: segment files, the metadata store, listeners, logs.
pub const RESERVED: u64 = 256;

/// The fewest connections the limit leaves, even on a machine with a tiny descriptor limit.
const MIN_CONNECTIONS: u64 = 16;

/// Raises the soft descriptor limit as far as the hard one allows and returns the client
/// connection limit: `configured` (0 = no limit of its own) within what the descriptors allow.
pub fn connection_limit(configured: usize) -> usize {
    let available = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file-descriptor limit; assuming 1024");
            1024
        }
    };
    let allowed = available.saturating_sub(RESERVED).max(MIN_CONNECTIONS);
    let allowed = usize::try_from(allowed).unwrap_or(usize::MAX);
    match configured {
        0 => allowed,
        n if n > allowed => {
            tracing::warn!(
                configured = n,
                allowed,
                descriptors = available,
                "limits.max_connections is above what the file-descriptor limit allows; using the lower figure"
            );
            allowed
        }
        n => n,
    }
}

/// Open file descriptors of this process (Linux).
pub fn open_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

/// The soft descriptor limit in force.
pub fn limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_limit_is_kept_within_the_descriptors() {
        let allowed = connection_limit(0);
        assert!(allowed >= MIN_CONNECTIONS as usize);
        assert_eq!(connection_limit(5), 5);
        assert_eq!(connection_limit(usize::MAX), allowed);
    }
}
