//! Finished `GET /sessions/whoami` answers, keyed by the SHA-256 of the session token, so the hottest
//! route answers a known session without cloning, rendering or serialising anything.
//!
//! An entry is only trusted while the store's read generation (see `SessionStore::read_generation`) is
//! the one read *before* the session and identity were loaded: any committed change to an existing
//! session or identity (logout, revocation, settings, admin edits, deletion) moves the generation and
//! so retires every entry at once. Expiry is checked on every hit. A store without a generation
//! (PostgreSQL while its change listener is disconnected) gets no caching here. Memory is bounded by
//! `sallyport.cache.whoami_max_bytes`, split over shards so the lock is rarely contended.

use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::HeaderValue;
use sallyport_core::bounded_map::BoundedMap;
use time::OffsetDateTime;

const SHARDS: usize = 16;
/// Bytes counted per entry beyond its buffer: the map slot (32-byte key, 32-byte `Bytes`, its 8-byte
/// size) and its share of the empty slots (a full map's table has 2.25 to 4.5 slots per entry, see
/// `BoundedMap`), the shared reference count `Bytes` allocates, and the allocator's headers.
const OVERHEAD: usize = 224;
/// An entry's buffer starts with its generation (8 bytes), the session's expiry (unix nanoseconds, 8
/// bytes) and the identity id's length (1 byte); the identity id and the body follow.
const HEAD: usize = 17;

/// A cached answer: the body and the `X-Kratos-Authenticated-Identity-Id` header, both slices of the
/// entry's one buffer (no copy, no allocation per hit).
pub struct Hit {
    pub body: Bytes,
    pub identity_id: HeaderValue,
}

/// One allocation per answer: its generation, expiry, identity id and body in one buffer.
struct Entry(Bytes);

impl Entry {
    fn new(generation: u64, expires_at: OffsetDateTime, body: &[u8], identity_id: &str) -> Option<Entry> {
        let id_len = u8::try_from(identity_id.len()).ok()?;
        let mut buf = Vec::with_capacity(HEAD + identity_id.len() + body.len());
        buf.extend_from_slice(&generation.to_le_bytes());
        buf.extend_from_slice(&nanos(expires_at).to_le_bytes());
        buf.push(id_len);
        buf.extend_from_slice(identity_id.as_bytes());
        buf.extend_from_slice(body);
        Some(Entry(Bytes::from(buf)))
    }

    fn word(&self, at: usize) -> [u8; 8] {
        self.0[at..at + 8].try_into().unwrap_or_default()
    }

    fn generation(&self) -> u64 {
        u64::from_le_bytes(self.word(0))
    }

    fn expires_at(&self) -> i64 {
        i64::from_le_bytes(self.word(8))
    }

    fn hit(&self) -> Option<Hit> {
        let id_end = HEAD + usize::from(self.0[16]);
        Some(Hit {
            body: self.0.slice(id_end..),
            identity_id: HeaderValue::from_maybe_shared(self.0.slice(HEAD..id_end)).ok()?,
        })
    }

    /// Bytes counted for the entry `new` would build.
    fn size_of(body: &[u8], identity_id: &str) -> usize {
        HEAD + identity_id.len() + body.len() + OVERHEAD
    }
}

/// Unix nanoseconds, saturating (an expiry past 2262 is "never" here as anywhere).
fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

type Shard = BoundedMap<[u8; 32], Entry, DigestKey>;

/// The keys are SHA-256 digests, already uniform: eight of their bytes are the hash, instead of running
/// SipHash over all 32 on every whoami. Flooding a bucket would need valid sessions whose token digests
/// collide, and only valid sessions are ever stored.
#[derive(Default, Clone, Copy)]
struct DigestKey;

impl std::hash::BuildHasher for DigestKey {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Bytes 8..16: byte 0 picks the shard, so it is the same for every key in one map.
        if let Some(b) = bytes.get(8..16) {
            self.0 = u64::from_le_bytes(b.try_into().unwrap_or_default());
        }
    }
    fn write_usize(&mut self, _len: usize) {}
    fn finish(&self) -> u64 {
        self.0
    }
}

pub struct WhoamiCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    /// Sealed session cookie (its key, `secret::sealed_cookie_key`) → digest of the token it opens
    /// to. A fact that never changes, so no generation; bounded by count per shard.
    cookies: Vec<Mutex<CookieShard>>,
    cookies_per_shard: usize,
}

type CookieShard = BoundedMap<[u8; 32], [u8; 32], DigestKey>;

/// Bytes counted per remembered cookie: its map slot (two keys and a size) and its share of the empty
/// slots.
const COOKIE_ENTRY: usize = 176;
/// Remembered cookies may take this share of `whoami_max_bytes` on top of the answers' (docs/caches.md).
const COOKIE_SHARE: usize = 16;

impl WhoamiCache {
    /// `max_bytes` 0 turns the cache off.
    pub fn new(max_bytes: usize) -> WhoamiCache {
        let shard_budget = max_bytes / SHARDS;
        let cookies_per_shard = max_bytes / COOKIE_SHARE / COOKIE_ENTRY / SHARDS;
        WhoamiCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(BoundedMap::with_hasher(shard_budget, DigestKey)))
                .collect(),
            shard_budget,
            cookies: (0..SHARDS)
                .map(|_| {
                    Mutex::new(BoundedMap::with_hasher(
                        cookies_per_shard * COOKIE_ENTRY,
                        DigestKey,
                    ))
                })
                .collect(),
            cookies_per_shard,
        }
    }

    fn cookie_shard(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, CookieShard> {
        self.cookies[key[0] as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The token digest a sealed cookie opened to before.
    pub fn cookie_digest(&self, cookie: &[u8; 32]) -> Option<[u8; 32]> {
        if self.cookies_per_shard == 0 {
            return None;
        }
        self.cookie_shard(cookie).get(cookie).copied()
    }

    /// Remembers that the sealed cookie `cookie` opened to a token with digest `digest`.
    pub fn remember_cookie(&self, cookie: [u8; 32], digest: [u8; 32]) {
        if self.cookies_per_shard == 0 {
            return;
        }
        self.cookie_shard(&cookie).insert(cookie, digest, COOKIE_ENTRY);
    }

    /// Cookies remembered (for tests and diagnostics).
    pub fn cookies(&self) -> usize {
        self.cookies
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    fn shard(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, Shard> {
        // The key is a SHA-256: any byte of it is uniformly spread.
        self.shards[key[0] as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The answer for `key` if it was built at `generation` and the session has not expired by `now`.
    pub fn get(&self, key: &[u8; 32], generation: u64, now: OffsetDateTime) -> Option<Hit> {
        if self.shard_budget == 0 {
            return None;
        }
        let mut shard = self.shard(key);
        let entry = shard.get(key)?;
        if entry.generation() == generation && entry.expires_at() > nanos(now) {
            return entry.hit();
        }
        shard.remove(key);
        None
    }

    /// Keeps the answer `body` for `key` and hands it back as a hit (sharing the kept buffer); `None`
    /// when the cache is off or the answer is larger than a shard's budget.
    pub fn put(
        &self,
        key: [u8; 32],
        generation: u64,
        expires_at: OffsetDateTime,
        body: &[u8],
        identity_id: &str,
    ) -> Option<Hit> {
        // Off, or larger than a shard holds: no buffer is built for nothing.
        let size = Entry::size_of(body, identity_id);
        if size > self.shard_budget {
            return None;
        }
        let entry = Entry::new(generation, expires_at, body, identity_id)?;
        let hit = entry.hit()?;
        self.shard(&key).insert(key, entry, size);
        Some(hit)
    }

    /// Estimated bytes held (for tests and diagnostics).
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 32] {
        sallyport_core::secret::token_digest_bytes(&i.to_string())
    }

    #[test]
    fn stays_within_its_budget() {
        let c = WhoamiCache::new(1 << 20);
        let later = OffsetDateTime::now_utc() + time::Duration::HOUR;
        for i in 0..20_000 {
            c.put(key(i), 0, later, &[b'x'; 1000], "id");
            assert!(c.bytes() <= 1 << 20);
        }
        assert!(c.bytes() > (1 << 20) / 2);
    }

    #[test]
    fn remembered_cookies_stay_within_their_share() {
        let c = WhoamiCache::new(1 << 20);
        for i in 0..20_000 {
            c.remember_cookie(key(i), key(i + 1));
            assert!(c.cookies() * COOKIE_ENTRY <= (1 << 20) / COOKIE_SHARE);
        }
        assert_eq!(c.cookie_digest(&key(19_999)), Some(key(20_000)));
        assert!(c.cookies() * COOKIE_ENTRY > (1 << 20) / COOKIE_SHARE / 2);
        let off = WhoamiCache::new(0);
        off.remember_cookie(key(1), key(2));
        assert_eq!(off.cookie_digest(&key(1)), None);
    }

    #[test]
    fn another_generation_or_expiry_misses() {
        let c = WhoamiCache::new(1 << 20);
        let now = OffsetDateTime::now_utc();
        let put = c
            .put(key(1), 7, now + time::Duration::SECOND, b"{}", "id")
            .unwrap();
        assert_eq!(
            (&put.body[..], put.identity_id.as_bytes()),
            (&b"{}"[..], &b"id"[..])
        );
        let hit = c.get(&key(1), 7, now).unwrap();
        assert_eq!(
            (&hit.body[..], hit.identity_id.as_bytes()),
            (&b"{}"[..], &b"id"[..])
        );
        assert!(c.get(&key(1), 8, now).is_none());
        // The stale entry is gone for good, not only skipped.
        assert!(c.get(&key(1), 7, now).is_none());
        c.put(key(2), 7, now + time::Duration::SECOND, b"{}", "id");
        assert!(c.get(&key(2), 7, now + time::Duration::SECOND).is_none());
        assert_eq!(c.bytes(), 0);
        assert!(WhoamiCache::new(0).get(&key(1), 7, now).is_none());
        assert!(WhoamiCache::new(0).put(key(1), 7, now, b"{}", "id").is_none());
    }

    #[test]
    fn an_entry_keeps_its_parts_apart() {
        let c = WhoamiCache::new(1 << 20);
        let expiry = OffsetDateTime::from_unix_timestamp(4_102_444_800).unwrap();
        let id = "5f0c3e8e-0b1a-4b53-9d7e-2c64c1f0a6b1";
        let body = br#"{"id":"s","active":true}"#;
        c.put(key(3), u64::MAX - 1, expiry, body, id);
        let hit = c
            .get(&key(3), u64::MAX - 1, expiry - time::Duration::NANOSECOND)
            .unwrap();
        assert_eq!(&hit.body[..], &body[..]);
        assert_eq!(hit.identity_id.to_str().unwrap(), id);
        assert!(
            c.get(&key(3), u64::MAX - 1, expiry).is_none(),
            "expired at its expiry"
        );
        // An identity id that cannot be a header value is not cached.
        assert!(c.put(key(4), 1, expiry, body, "bad\nid").is_none());
        assert!(c.get(&key(4), 1, OffsetDateTime::UNIX_EPOCH).is_none());
    }
}
