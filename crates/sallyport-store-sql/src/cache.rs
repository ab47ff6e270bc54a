//! A read cache for the two lookups every authenticated request makes (session by token digest, identity
//! by id). Every write to sessions or identities drops the whole cache. On SQLite every write goes
//! through this process, so that is exact. PostgreSQL deployments run several nodes against one
//! database: there every write also sends a notification (`announce_sql`) and each node's listener
//! drops its cache when one arrives (`shared`); while the listener is not connected the cache is off.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sallyport_core::bounded_map::BoundedMap;
use sallyport_core::identity::Identity;
use sallyport_core::session::Session;
use uuid::Uuid;

/// Bounds memory: each of the two maps holds at most about this many bytes (estimated, see `approx_*`).
/// The whoami answers themselves are cached above the store (`sallyport.cache`), so this one only needs
/// to spare the database the lookups of the other authenticated routes.
const MAX_BYTES_PER_MAP: usize = 1 << 20;

fn approx_session(s: &Session) -> usize {
    std::mem::size_of::<Session>()
        + 2 * s.token_digest.len()
        + s.logout_token_digest.len()
        + s.authentication_methods.len() * 96
        + s.devices.len() * 160
        + 64
}

fn approx_identity(i: &Identity) -> usize {
    // Traits and metadata dominate; their JSON length is a fair stand-in for their heap size.
    let json = |v: &serde_json::Value| v.to_string().len() * 3;
    std::mem::size_of::<Identity>()
        + json(&i.traits)
        + i.metadata_public.as_ref().map_or(0, json)
        + i.metadata_admin.as_ref().map_or(0, json)
        + i.credentials.len() * 512
        + (i.verifiable_addresses.len() + i.recovery_addresses.len()) * 256
        + 64
}

struct State {
    sessions: BoundedMap<String, Session>,
    identities: BoundedMap<Uuid, Identity>,
}

impl Default for State {
    fn default() -> State {
        State {
            sessions: BoundedMap::new(MAX_BYTES_PER_MAP),
            identities: BoundedMap::new(MAX_BYTES_PER_MAP),
        }
    }
}

pub struct ReadCache {
    enabled: bool,
    /// Shared database: whether the change listener is connected (always true otherwise).
    live: std::sync::atomic::AtomicBool,
    announce: Option<&'static str>,
    /// Bumped (under the lock) by every invalidation; read without it by `current`.
    generation: AtomicU64,
    state: Mutex<State>,
}

impl ReadCache {
    pub fn enabled() -> ReadCache {
        // An escape hatch for setups where another process writes the same SQLite file.
        let off = std::env::var("SALLYPORT_DISABLE_READ_CACHE").is_ok_and(|v| v == "1" || v == "true");
        ReadCache {
            enabled: !off,
            live: true.into(),
            announce: None,
            generation: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    pub fn disabled() -> ReadCache {
        ReadCache {
            enabled: false,
            live: true.into(),
            announce: None,
            generation: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    /// For a database other processes write: `announce` (a statement) tells them about a change; the
    /// cache stays off until [`set_live`](Self::set_live) says this node hears theirs.
    pub fn shared(announce: &'static str) -> ReadCache {
        let off = std::env::var("SALLYPORT_DISABLE_READ_CACHE").is_ok_and(|v| v == "1" || v == "true");
        ReadCache {
            enabled: !off,
            live: false.into(),
            announce: Some(announce),
            generation: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    /// Whether changes made by other processes are being heard; a gap drops everything.
    pub fn set_live(&self, live: bool) {
        self.invalidate();
        self.live.store(live, Ordering::Release);
        self.invalidate();
    }

    pub fn announce_sql(&self) -> Option<&'static str> {
        self.announce.filter(|_| self.enabled)
    }

    fn usable(&self) -> bool {
        self.enabled && self.live.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation to hand back to `put_*`: a value read before a concurrent write is never stored.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The generation when this process sees every write (the cache is on), for caches built on top.
    pub fn current(&self) -> Option<u64> {
        self.usable().then(|| self.generation())
    }

    pub fn session(&self, digest: &str) -> Option<Session> {
        if !self.usable() {
            return None;
        }
        self.lock().sessions.get(digest).cloned()
    }

    pub fn put_session(&self, generation: u64, session: &Session) {
        if !self.enabled {
            return;
        }
        let mut s = self.lock();
        if self.generation() == generation {
            let size = approx_session(session);
            s.sessions
                .insert(session.token_digest.clone(), session.clone(), size);
        }
    }

    pub fn identity(&self, id: Uuid) -> Option<Identity> {
        if !self.usable() {
            return None;
        }
        self.lock().identities.get(&id).cloned()
    }

    pub fn put_identity(&self, generation: u64, identity: &Identity) {
        if !self.enabled {
            return;
        }
        let size = approx_identity(identity);
        let mut s = self.lock();
        if self.generation() == generation {
            s.identities.insert(identity.id, identity.clone(), size);
        }
    }

    /// After any committed write to sessions or identities.
    pub fn invalidate(&self) {
        if !self.enabled {
            return;
        }
        let mut s = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        s.sessions.clear();
        s.identities.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_an_invalidation_is_not_stored() {
        let c = ReadCache::enabled();
        let g = c.generation();
        c.invalidate();
        let s = sallyport_core::session::Session::issue(
            Uuid::new_v4(),
            time::Duration::HOUR,
            time::OffsetDateTime::now_utc(),
        )
        .session;
        c.put_session(g, &s);
        assert!(c.session(&s.token_digest).is_none());
        assert_eq!(c.current(), Some(g + 1));
        assert_eq!(ReadCache::disabled().current(), None);
    }
}
