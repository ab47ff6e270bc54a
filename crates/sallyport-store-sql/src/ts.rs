//! Timestamps as both databases keep them.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A timestamp column. Postgres keeps `TIMESTAMPTZ`. SQLite has no date type, and sqlx would write
/// RFC 3339 with the fraction trimmed (`…:05Z` sorts after `…:05.1Z` as text), so we write a
/// fixed-width UTC form whose text order is time order and compare columns in SQL like Postgres does.
/// Both keep microseconds (the domain truncates to them: `sallyport_core::time_fmt::now`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub OffsetDateTime);

const SQLITE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl From<OffsetDateTime> for Ts {
    fn from(t: OffsetDateTime) -> Ts {
        Ts(t)
    }
}

impl Ts {
    pub fn sqlite_text(self) -> Result<String, time::error::Format> {
        match self.sqlite_fixed() {
            // ASCII digits and separators, always UTF-8: copied whole, not char by char.
            Some(text) => Ok(String::from_utf8(text.to_vec()).unwrap_or_default()),
            None => self.0.to_offset(UtcOffset::UTC).format(SQLITE_FORMAT),
        }
    }

    /// [`Ts::sqlite_text`]'s ASCII bytes without an allocation, for years 0–9999 (`None` outside).
    pub fn sqlite_fixed(self) -> Option<[u8; 27]> {
        let t = self.0.to_offset(UtcOffset::UTC);
        // Written by hand: a bulk insert encodes several timestamps per row, and the generic
        // formatter was a visible share of it. Years outside four digits take the formatter's way.
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        digits(&mut text[0..4], year);
        digits(&mut text[5..7], u8::from(t.month()).into());
        digits(&mut text[8..10], t.day().into());
        digits(&mut text[11..13], t.hour().into());
        digits(&mut text[14..16], t.minute().into());
        digits(&mut text[17..19], t.second().into());
        digits(&mut text[20..26], t.microsecond());
        Some(text)
    }
}

/// `value`'s last `out.len()` decimal digits, zero-padded, into `out`.
fn digits(out: &mut [u8], mut value: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <OffsetDateTime as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.sqlite_text()?, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Ts, BoxDynError> {
        <OffsetDateTime as Decode<'r, Sqlite>>::decode(value).map(Ts)
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Ts, BoxDynError> {
        <OffsetDateTime as Decode<'r, Postgres>>::decode(value).map(Ts)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn sqlite_text_is_fixed_width_utc() {
        let t = Ts(datetime!(2025-01-02 03:04:05.1 +02:00));
        assert_eq!(t.sqlite_text().unwrap(), "2025-01-02T01:04:05.100000Z");
        let whole = Ts(datetime!(2025-01-02 01:04:05 UTC));
        assert!(whole.sqlite_text().unwrap() < t.sqlite_text().unwrap());
        let nanos = Ts(datetime!(2025-01-02 01:04:05.123456789 UTC));
        assert_eq!(nanos.sqlite_text().unwrap(), "2025-01-02T01:04:05.123456Z");
    }

    #[test]
    fn sqlite_text_matches_the_format_description() {
        for t in [
            datetime!(0000-01-01 00:00:00 UTC),
            datetime!(0001-02-03 04:05:06.000007 UTC),
            datetime!(1999-12-31 23:59:59.999999999 UTC),
            datetime!(2026-12-07 07:00:00.5 -05:30),
            datetime!(9999-12-31 23:59:59.999999 UTC),
            datetime!(-0001-06-15 12:00:00 UTC),
        ] {
            assert_eq!(
                Ts(t).sqlite_text().unwrap(),
                t.to_offset(UtcOffset::UTC).format(SQLITE_FORMAT).unwrap(),
                "{t}"
            );
        }
    }
}
