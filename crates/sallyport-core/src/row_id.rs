//! Ids of new identities and of the rows that hang off them (credentials, identifiers, addresses).
//!
//! Time-ordered (UUIDv7: 48 bits of Unix milliseconds, then random bits) instead of random v4: every
//! index keyed by one of these ids (primary keys, and the `identity_id` index of each child table)
//! then grows at its right edge, so a batch of new identities dirties a few pages per index instead
//! of one page per identity spread over the whole index. With random keys a bulk import on SQLite
//! spent most of its time writing and checkpointing those pages. Clients see an opaque UUID either
//! way; what the id reveals (its creation time to the millisecond) is `created_at`, shown with it.

use uuid::Uuid;

/// A new time-ordered id.
pub fn new_row_id() -> Uuid {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // v4's random bytes, skipping the two that carry its version and variant.
    let random = Uuid::new_v4().into_bytes();
    let mut tail = [0u8; 10];
    tail[..6].copy_from_slice(&random[..6]);
    tail[6..].copy_from_slice(&random[12..]);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
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
}
