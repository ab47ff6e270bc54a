//! Ids of new identities, of the rows that hang off them (credentials, identifiers, addresses), and
//! of new sessions.
//!
//! Time-ordered (UUIDv7: 48 bits of Unix milliseconds, then random bits) instead of random v4: every
//! index keyed by one of these ids (primary keys, and the `identity_id` index of each child table)
//! then grows at its right edge, so a batch of new identities dirties a few pages per index instead
//! of one page per identity spread over the whole index. With random keys a bulk import on SQLite
//! spent most of its time writing and checkpointing those pages. Clients see an opaque UUID either
//! way; what the id reveals (its creation time to the millisecond) is `created_at`, shown with it.

use std::cell::RefCell;

use uuid::Uuid;

/// Random bytes per refill: 64 ids' worth.
const POOL: usize = 640;

/// OS random bytes not yet used, per thread: a bulk import makes five ids per identity, and one
/// `getrandom` system call for each was a visible share of it. Ids are not secrets; they only must
/// not repeat, which the OS generator's bytes guarantee whether drawn 10 or 640 at a time.
struct Pool {
    bytes: [u8; POOL],
    used: usize,
}

thread_local! {
    static RANDOM: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; POOL], used: POOL }) };
}

/// Ten random bytes from this thread's pool, refilled from the OS when spent.
fn random_tail() -> [u8; 10] {
    RANDOM.with_borrow_mut(|pool| {
        if pool.used + 10 > POOL {
            if getrandom::fill(&mut pool.bytes).is_err() {
                // As `Uuid::new_v4` would have done: its random bytes, skipping version and variant.
                let random = Uuid::new_v4().into_bytes();
                let mut tail = [0u8; 10];
                tail[..6].copy_from_slice(&random[..6]);
                tail[6..].copy_from_slice(&random[12..]);
                return tail;
            }
            pool.used = 0;
        }
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&pool.bytes[pool.used..pool.used + 10]);
        pool.used += 10;
        tail
    })
}

/// A new time-ordered id.
pub fn new_row_id() -> Uuid {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &random_tail()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_ordered_by_creation_time() {
        let first = new_row_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_row_id();
        assert_eq!(first.get_version_num(), 7);
        assert_eq!(first.get_variant(), uuid::Variant::RFC4122);
        assert!(
            first.as_bytes() < second.as_bytes(),
            "{first} should sort before {second}"
        );
        assert_ne!(first, new_row_id());
    }

    #[test]
    fn ids_never_repeat_across_refills_and_threads() {
        let mine: Vec<Uuid> = (0..5000).map(|_| new_row_id()).collect();
        let theirs = std::thread::spawn(|| (0..5000).map(|_| new_row_id()).collect::<Vec<_>>())
            .join()
            .expect("thread");
        let mut all = std::collections::HashSet::new();
        for id in mine.iter().chain(&theirs) {
            assert!(all.insert(*id), "{id} repeated");
            assert_eq!(id.get_version_num(), 7);
        }
        // Random parts, not just the clock, tell consecutive ids apart.
        let tails: std::collections::HashSet<_> = mine.iter().map(|id| id.as_bytes()[8..].to_vec()).collect();
        assert_eq!(tails.len(), mine.len());
    }
}
