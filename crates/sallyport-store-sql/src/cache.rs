//! A read cache for the two lookups every authenticated request makes (session by token digest, identity
//! by id). Every write to sessions or identities goes through this process and drops the whole cache, so
//! it is exact as long as one process writes the database — which is what the SQLite backend assumes.
//! PostgreSQL deployments run several nodes against one database, so there the cache stays off.

use std::collections::HashMap;
use std::sync::Mutex;

use sallyport_core::identity::Identity;
use sallyport_core::session::Session;
use uuid::Uuid;

/// Bounds memory: past this many entries the cache starts over.
const MAX_ENTRIES: usize = 50_000;

#[derive(Default)]
struct State {
    generation: u64,
    sessions: HashMap<String, Session>,
    identities: HashMap<Uuid, Identity>,
}

pub struct ReadCache {
    enabled: bool,
    state: Mutex<State>,
}

impl ReadCache {
    pub fn enabled() -> ReadCache {
        // An escape hatch for setups where another process writes the same SQLite file.
        let off = std::env::var("SALLYPORT_DISABLE_READ_CACHE").is_ok_and(|v| v == "1" || v == "true");
        ReadCache {
            enabled: !off,
            state: Mutex::default(),
        }
    }

    pub fn disabled() -> ReadCache {
        ReadCache {
            enabled: false,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation to hand back to `put_*`: a value read before a concurrent write is never stored.
    pub fn generation(&self) -> u64 {
        if self.enabled { self.lock().generation } else { 0 }
    }

    pub fn session(&self, digest: &str) -> Option<Session> {
        if !self.enabled {
            return None;
        }
        self.lock().sessions.get(digest).cloned()
    }

    pub fn put_session(&self, generation: u64, session: &Session) {
        if !self.enabled {
            return;
        }
        let mut s = self.lock();
        if s.generation == generation {
            if s.sessions.len() >= MAX_ENTRIES {
                s.sessions.clear();
            }
            s.sessions.insert(session.token_digest.clone(), session.clone());
        }
    }

    pub fn identity(&self, id: Uuid) -> Option<Identity> {
        if !self.enabled {
            return None;
        }
        self.lock().identities.get(&id).cloned()
    }

    pub fn put_identity(&self, generation: u64, identity: &Identity) {
        if !self.enabled {
            return;
        }
        let mut s = self.lock();
        if s.generation == generation {
            if s.identities.len() >= MAX_ENTRIES {
                s.identities.clear();
            }
            s.identities.insert(identity.id, identity.clone());
        }
    }

    /// After any committed write to sessions or identities.
    pub fn invalidate(&self) {
        if !self.enabled {
            return;
        }
        let mut s = self.lock();
        s.generation += 1;
        s.sessions.clear();
        s.identities.clear();
    }
}
