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

    /// Reads [`Ts::sqlite_fixed`]'s form back, for the reads made without sqlx (`InlineReaders`);
    /// `None` for any other text, which sqlx's decoder, taking more forms, then reads.
    pub fn from_sqlite_fixed(text: &[u8]) -> Option<Ts> {
        let b: &[u8; 27] = text.try_into().ok()?;
        let separators = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ];
        if separators.iter().any(|&(at, c)| b[at] != c) {
            return None;
        }
        let number = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let month = time::Month::try_from(u8::try_from(number(5, 7)?).ok()?).ok()?;
        let date = time::Date::from_calendar_date(
            i32::try_from(number(0, 4)?).ok()?,
            month,
            u8::try_from(number(8, 10)?).ok()?,
        )
        .ok()?;
        let time = time::Time::from_hms_micro(
            u8::try_from(number(11, 13)?).ok()?,
            u8::try_from(number(14, 16)?).ok()?,
            u8::try_from(number(17, 19)?).ok()?,
            number(20, 26)?,
        )
        .ok()?;
        Some(Ts(time::PrimitiveDateTime::new(date, time).assume_utc()))
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
    fn the_fixed_form_reads_back_as_sqlx_reads_it() {
        use sqlx::{Connection as _, Row as _};
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut conn = rt
            .block_on(sqlx::SqliteConnection::connect("sqlite::memory:"))
            .expect("open");
        for t in [
            datetime!(2026-12-07 18:00:01.123456 UTC),
            datetime!(2000-02-29 23:59:59.999999 +02:00),
            datetime!(0001-01-01 00:00 UTC),
            datetime!(9999-12-31 23:59:59.000001 UTC),
        ] {
            let text = Ts(t).sqlite_fixed().expect("four-digit year");
            let back = Ts::from_sqlite_fixed(&text).expect("read back").0;
            let text = String::from_utf8(text.to_vec()).expect("ascii");
            let by_sqlx: OffsetDateTime = rt
                .block_on(sqlx::query("SELECT $1").bind(&text).fetch_one(&mut conn))
                .expect("select")
                .get(0);
            assert_eq!(back, by_sqlx, "{text}");
            assert_eq!(back.offset(), by_sqlx.offset(), "{text}");
        }
        for odd in [
            &b"2026-12-07T18:00:01.123456+00:00"[..],
            b"2026-12-07 18:00:01.123456Z",
            b"2026-13-07T18:00:01.123456Z",
            b"2026-02-30T18:00:01.123456Z",
            b"2026-12-07T24:00:01.123456Z",
            b"2026-12-07T18:00:01.12345xZ",
            b"",
        ] {
            assert!(
                Ts::from_sqlite_fixed(odd).is_none(),
                "{}",
                String::from_utf8_lossy(odd)
            );
        }
    }

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
