//! Users, salted password hashes and vhost access, shared by every adapter.

use crate::auth_backend::{Answer, AuthBackend, Query};
use crate::clock::Clock;
use crate::error::{CoreError, CoreResult};
use crate::login_throttle::{Admission, LoginThrottle};
use crate::storage::{Permission, UserRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

/// Hashes a password as RabbitMQ's `rabbit_password_hashing_sha256` does: a random 4-byte salt
/// followed by SHA-256(salt ‖ password).
pub fn hash_password(password: &str) -> Vec<u8> {
    let mut salt = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut salt);
    hash_with_salt(&salt, password)
}

fn hash_with_salt(salt: &[u8], password: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(&h.finalize());
    out
}

/// Checks a password against a stored hash, in time independent of where they differ.
pub fn verify_password(stored: &[u8], password: &str) -> bool {
    if stored.len() != 36 {
        return false;
    }
    let candidate = hash_with_salt(&stored[..4], password);
    candidate
        .iter()
        .zip(stored)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user's name.
    pub name: String,
    /// Its tags (`administrator`, `management`, ...).
    pub tags: Vec<String>,
}

/// At most this many users logged in through an external backend are remembered as such
/// (past it, the oldest are forgotten and their connections' rights fall back to the
/// internal database, which refuses users it does not know).
const EXTERNAL_USERS_MAX: usize = 65_536;

/// The user database every adapter authenticates against, and the external backend
/// (RabbitMQ's `auth_backends`) asked about users it does not hold.
#[derive(Debug)]
pub struct Authenticator {
    users: RwLock<HashMap<String, UserRecord>>,
    /// Permissions by (vhost, user).
    permissions: RwLock<HashMap<(String, String), Permission>>,
    /// Users that may only connect from loopback (RabbitMQ's `loopback_users`, guest by default).
    loopback_only: RwLock<Vec<String>>,
    /// Logins refused so far (any protocol, the management API included).
    failures: std::sync::atomic::AtomicU64,
    /// Bumped whenever a user or a permission changes: compiled permissions older than it
    /// are recompiled.
    generation: std::sync::atomic::AtomicU64,
    /// The failed-login delay per peer address.
    throttle: std::sync::Mutex<LoginThrottle>,
    /// The clock the throttle runs on (the broker's).
    clock: Arc<Clock>,
    /// Whether the internal database is a backend (RabbitMQ's `internal`), tried first.
    internal: std::sync::atomic::AtomicBool,
    /// The external backend, tried after the internal one.
    external: RwLock<Option<Arc<dyn AuthBackend>>>,
    /// Users whose last login the external backend accepted, with its tags and the order
    /// they came in: their rights are asked of it too.
    external_users: RwLock<HashMap<String, (Vec<String>, u64)>>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new()
    }
}

impl Authenticator {
    /// An empty user database on the system clock.
    pub fn new() -> Self {
        Authenticator::with_clock(Arc::new(Clock::system()))
    }

    /// An empty user database whose failed-login delay runs on `clock`.
    pub fn with_clock(clock: Arc<Clock>) -> Self {
        Authenticator {
            users: RwLock::new(HashMap::new()),
            permissions: RwLock::new(HashMap::new()),
            loopback_only: RwLock::new(vec!["guest".to_string()]),
            failures: Default::default(),
            generation: Default::default(),
            throttle: Default::default(),
            clock,
            internal: std::sync::atomic::AtomicBool::new(true),
            external: RwLock::new(None),
            external_users: RwLock::new(HashMap::new()),
        }
    }

    /// Chooses the backends: the internal database (when `internal`), then `external`.
    pub fn set_backends(&self, internal: bool, external: Option<Arc<dyn AuthBackend>>) {
        self.internal
            .store(internal, std::sync::atomic::Ordering::Relaxed);
        *self.external.write().unwrap_or_else(|e| e.into_inner()) = external;
        self.external_users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.bump_generation();
    }

    /// The external backend that logged `user` in, if it was one: its rights come from
    /// there.
    pub fn external_backend_of(&self, user: &str) -> Option<Arc<dyn AuthBackend>> {
        let known = self
            .external_users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(user);
        if !known {
            return None;
        }
        self.external
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn remember_external(&self, user: &str, tags: Vec<String>) {
        let mut users = self
            .external_users
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let order = self.clock.now_ms();
        if users.len() >= EXTERNAL_USERS_MAX && !users.contains_key(user) {
            if let Some(oldest) = users
                .iter()
                .min_by_key(|(_, (_, o))| *o)
                .map(|(k, _)| k.clone())
            {
                users.remove(&oldest);
            }
        }
        users.insert(user.to_string(), (tags, order));
    }

    fn forget_external(&self, user: &str) {
        let mut users = self
            .external_users
            .write()
            .unwrap_or_else(|e| e.into_inner());
        users.remove(user);
    }

    /// Sets the failed-login delay: each failed login from a peer address costs `delay_ms`,
    /// the first `burst` pass at once (0 ms: off).
    pub fn set_login_throttle(&self, delay_ms: u64, burst: u64) {
        *self.throttle.lock().unwrap_or_else(|e| e.into_inner()) =
            LoginThrottle::new(delay_ms, burst);
    }

    /// How long a new connection from `peer` waits before its login is looked at (it may wait
    /// at most `max_wait`); [`Admission::Refused`] when longer. Peers without recent failed
    /// logins never wait.
    pub fn admit_login(&self, peer: IpAddr, max_wait: std::time::Duration) -> Admission {
        let now = self.clock.now_ms();
        self.throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(peer, now, max_wait.as_millis() as u64)
    }

    /// Adds or replaces a user record.
    pub fn put(&self, user: UserRecord) {
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.name.clone(), user);
    }

    /// Removes a user; false if there was none.
    pub fn remove(&self, name: &str) -> bool {
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some()
    }

    /// The record of a user, if it exists.
    pub fn get(&self, name: &str) -> Option<UserRecord> {
        self.users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Sets a user's permissions in a vhost.
    pub fn put_permission(&self, p: Permission) {
        self.permissions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((p.vhost.clone(), p.user.clone()), p);
    }

    /// Clears a user's permissions in a vhost.
    pub fn remove_permission(&self, user: &str, vhost: &str) {
        self.permissions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(vhost.to_string(), user.to_string()));
    }

    /// Forgets every permission `keep` refuses (a deleted user's or vhost's).
    pub fn retain_permissions(&self, keep: impl Fn(&Permission) -> bool) {
        self.permissions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, p| keep(p));
    }

    /// Every permission, by vhost then user.
    pub fn permissions(&self) -> Vec<Permission> {
        let mut all: Vec<Permission> = self
            .permissions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.vhost, &a.user).cmp(&(&b.vhost, &b.user)));
        all
    }

    /// A user's permissions in a vhost, if set.
    pub fn permission(&self, user: &str, vhost: &str) -> Option<Permission> {
        self.permissions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(vhost.to_string(), user.to_string()))
            .cloned()
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<UserRecord> {
        let mut all: Vec<UserRecord> = self
            .users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// How many users there are.
    pub fn user_count(&self) -> usize {
        self.users.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sets which users may connect only from loopback.
    pub fn set_loopback_only(&self, users: Vec<String>) {
        *self
            .loopback_only
            .write()
            .unwrap_or_else(|e| e.into_inner()) = users;
    }

    /// The generation of users and permissions (see [`crate::permissions::Permit`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks every compiled permission stale.
    pub fn bump_generation(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Whether the user's own record lists `vhost` (users of the configuration file).
    pub fn lists_vhost(&self, user: &str, vhost: &str) -> bool {
        self.get(user)
            .is_some_and(|u| u.vhosts.iter().any(|v| v == vhost || v == "*"))
    }

    /// Logins refused so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Checks credentials of a login over `protocol` from `peer`. Every failure reads the
    /// same to the client (403 ACCESS_REFUSED); the log line says which it was.
    pub fn authenticate(
        &self,
        name: &str,
        password: &str,
        peer: Option<SocketAddr>,
        protocol: &str,
    ) -> CoreResult<AuthUser> {
        self.login(name, Some(password), peer, protocol)
    }

    /// Logs in as `name` on the strength of a client certificate the TLS layer verified
    /// (AMQP's EXTERNAL mechanism, MQTT's and STOMP's certificate login): the user must exist
    /// and may connect from `peer`; no password is asked, as with RabbitMQ's internal backend.
    pub fn authenticate_certificate(
        &self,
        name: &str,
        peer: Option<SocketAddr>,
        protocol: &str,
    ) -> CoreResult<AuthUser> {
        self.login(name, None, peer, protocol)
    }

    /// A login with a password, or with a verified certificate when `password` is None.
    fn login(
        &self,
        name: &str,
        password: Option<&str>,
        peer: Option<SocketAddr>,
        protocol: &str,
    ) -> CoreResult<AuthUser> {
        let mechanism = if password.is_some() {
            "PLAIN"
        } else {
            "EXTERNAL"
        };
        let refused = |reason: &str| {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(peer) = peer {
                self.throttle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed(peer.ip(), self.clock.now_ms());
            }
            tracing::warn!(
                user = name,
                protocol,
                ?peer,
                mechanism,
                reason,
                "login refused"
            );
            CoreError::AccessRefused(format!(
                "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile. (user '{name}')"
            ))
        };
        let internal = self.internal.load(std::sync::atomic::Ordering::Relaxed);
        let mut why = "no such user".to_string();
        let mut found = None;
        if internal {
            match self.get(name) {
                Some(user) if password.is_none_or(|p| verify_password(&user.password_hash, p)) => {
                    found = Some((user.tags, false));
                }
                Some(_) => why = "wrong password".into(),
                None => {}
            }
        }
        let external = self
            .external
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (None, Some(backend)) = (&found, external) {
            let query = Query::User {
                username: name.to_string(),
                password: password.map(str::to_string),
            };
            match backend.ask(&query) {
                Answer::Allow(tags) => found = Some((tags, true)),
                Answer::Deny => why = format!("refused by the {} backend", backend.name()),
                Answer::Error(e) => why = format!("the {} backend failed: {e}", backend.name()),
            }
        }
        let Some((tags, is_external)) = found else {
            return Err(refused(&why));
        };
        let loopback_only = self
            .loopback_only
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|u| u == name);
        if loopback_only && !peer.is_some_and(|p| p.ip().is_loopback()) {
            return Err(refused("the user may only connect via localhost"));
        }
        if is_external {
            self.remember_external(name, tags.clone());
        } else {
            self.forget_external(name);
        }
        Ok(AuthUser {
            name: name.to_string(),
            tags,
        })
    }

    /// Checks that `user` may open `vhost` (ACCESS_REFUSED otherwise; AMQP answers it with
    /// 530 as RabbitMQ does): the vhost is among the user's
    /// configured ones, or the user has permissions in it.
    /// A user the external backend logged in is asked about there (with the client's
    /// address `ip`, when there is a client connection).
    pub fn check_vhost(&self, user: &str, vhost: &str, ip: Option<IpAddr>) -> CoreResult<()> {
        let allowed = match self.external_backend_of(user) {
            Some(backend) => backend
                .ask(&Query::VHost {
                    username: user.to_string(),
                    vhost: vhost.to_string(),
                    ip,
                })
                .allows(),
            None => self.lists_vhost(user, vhost) || self.permission(user, vhost).is_some(),
        };
        if allowed {
            return Ok(());
        }
        Err(CoreError::AccessRefused(format!(
            "access to vhost '{vhost}' refused for user '{user}'"
        )))
    }
}

/// A user record with a freshly salted hash.
pub fn new_user(name: &str, password: &str, tags: Vec<String>, vhosts: Vec<String>) -> UserRecord {
    UserRecord {
        name: name.to_string(),
        password_hash: hash_password(password),
        tags,
        vhosts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash_password("secret");
        let b = hash_password("secret");
        assert_eq!(a.len(), 36);
        assert_ne!(a, b, "two hashes of one password differ by salt");
        assert!(verify_password(&a, "secret"));
        assert!(!verify_password(&a, "Secret"));
        assert!(!verify_password(b"short", "secret"));
    }

    #[test]
    fn guest_only_from_loopback() {
        let auth = Authenticator::new();
        auth.put(new_user(
            "guest",
            "guest",
            vec!["administrator".into()],
            vec!["/".into()],
        ));
        auth.put(new_user("app", "pw", vec![], vec!["/".into()]));
        assert!(auth
            .authenticate("guest", "guest", addr("127.0.0.1:5000"), "test")
            .is_ok());
        assert!(auth
            .authenticate("guest", "guest", addr("[::1]:5000"), "test")
            .is_ok());
        let e = auth
            .authenticate("guest", "guest", addr("192.0.2.7:5000"), "test")
            .unwrap_err();
        assert_eq!(e.name(), "ACCESS_REFUSED");
        assert!(auth
            .authenticate("app", "pw", addr("192.0.2.7:5000"), "test")
            .is_ok());
        assert!(auth
            .authenticate("app", "nope", addr("127.0.0.1:1"), "test")
            .is_err());
        assert!(auth
            .authenticate("ghost", "pw", addr("127.0.0.1:1"), "test")
            .is_err());
    }

    #[test]
    fn certificate_login_needs_an_existing_user_and_keeps_the_loopback_rule() {
        let auth = Authenticator::new();
        auth.put(new_user("device-7", "unused", vec![], vec!["/".into()]));
        auth.put(new_user("guest", "guest", vec![], vec!["/".into()]));
        auth.set_loopback_only(vec!["guest".into()]);
        let remote = addr("192.0.2.7:5000");
        let user = auth
            .authenticate_certificate("device-7", remote, "test")
            .unwrap();
        assert_eq!(user.name, "device-7");
        let before = auth.failures();
        let e = auth
            .authenticate_certificate("nobody", remote, "test")
            .unwrap_err();
        assert!(e.to_string().contains("EXTERNAL"), "{e}");
        assert!(auth
            .authenticate_certificate("guest", remote, "test")
            .is_err());
        assert!(auth
            .authenticate_certificate("guest", addr("127.0.0.1:1"), "test")
            .is_ok());
        assert_eq!(auth.failures(), before + 2);
    }

    #[test]
    fn failed_logins_delay_the_peer_on_the_supplied_clock() {
        let clock = Arc::new(Clock::manual());
        let auth = Authenticator::with_clock(clock.clone());
        auth.set_login_throttle(1000, 2);
        auth.put(new_user("app", "pw", vec![], vec!["/".into()]));
        let (attacker, other) = (addr("192.0.2.7:5000"), addr("192.0.2.8:5000"));
        let max = std::time::Duration::from_secs(10);
        let ip = attacker.unwrap().ip();
        for _ in 0..2 {
            assert_eq!(auth.admit_login(ip, max), Admission::After(0));
            assert!(auth.authenticate("app", "guess", attacker, "test").is_err());
        }
        // Past the burst: the next attempt waits one delay, a certificate login failure counts
        // the same, and another address is not slowed.
        assert_eq!(auth.admit_login(ip, max), Admission::After(1000));
        assert!(auth
            .authenticate_certificate("nobody", attacker, "test")
            .is_err());
        assert_eq!(
            auth.admit_login(other.unwrap().ip(), max),
            Admission::After(0)
        );
        assert_eq!(auth.admit_login(ip, max), Admission::After(3000));
        // Time passes, the debt is paid, and a success needs no wait.
        clock.advance(10_000);
        assert_eq!(auth.admit_login(ip, max), Admission::After(0));
        assert!(auth.authenticate("app", "pw", attacker, "test").is_ok());
    }

    #[test]
    fn vhost_access() {
        let auth = Authenticator::new();
        auth.put(new_user("a", "pw", vec![], vec!["/".into()]));
        assert!(auth.check_vhost("a", "/", None).is_ok());
        assert_eq!(
            auth.check_vhost("a", "other", None).unwrap_err().name(),
            "ACCESS_REFUSED"
        );
    }
}
