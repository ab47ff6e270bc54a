//! Timestamps on the wire look like Go's `time.Time` JSON (RFC 3339 with trimmed nanoseconds, `Z` for UTC).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// serde adapter: `#[serde(with = "crate::time_fmt::serde_rfc3339")]`.
pub mod serde_rfc3339 {
    pub use time::serde::rfc3339::{deserialize, serialize};
    pub mod option {
        pub use time::serde::rfc3339::option::{deserialize, serialize};
    }
}

pub fn now() -> OffsetDateTime {
    // Microsecond precision so a value read back from either database equals the one written.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}
