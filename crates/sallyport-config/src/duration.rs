//! Go-style duration strings (`"1h"`, `"10m"`, `"1h30m"`, `"100ms"`, `"1.5s"`), as Kratos writes them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Why a string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a valid duration ({reason}); expected a Go duration such as \"1h\", \"10m\", \"1h30m\" or \"100ms\""
)]
pub struct DurationError {
    /// The rejected input.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const NANOS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration string (`time.ParseDuration` syntax; negative values are rejected).
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        value: input.to_owned(),
        reason,
    };
    let mut rest = input.trim();
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if rest.is_empty() {
        return Err(err("empty"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..frac_len];
            rest = &r[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(err("missing unit (ns, us, ms, s, m or h)"));
        }
        let Some(&(_, scale)) = NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit) else {
            return Err(err("unknown unit; use ns, us, ms, s, m or h"));
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(|| err("number too large"))?;
        // Fractions: add digit_i * scale / 10^i, which is exact for every unit down to nanoseconds.
        let mut divisor: u128 = 1;
        for digit in frac_part.bytes().take(18) {
            divisor *= 10;
            nanos += u128::from(digit - b'0') * scale / divisor;
        }
        total = total.checked_add(nanos).ok_or_else(|| err("number too large"))?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err("number too large"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration the way Go's `time.Duration.String()` does (`"1h0m0s"`, `"1.5s"`, `"100ms"`).
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (scale, unit) = match nanos {
            n if n < 1_000 => (1, "ns"),
            n if n < 1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{unit}", fraction(nanos, scale));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let secs = fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

fn fraction(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A [`Duration`] that deserializes from a Go duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Self {
        d.0
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

impl std::str::FromStr for GoDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_go_duration(s).map(GoDuration)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        parse_go_duration(&s)
            .map(GoDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// `#[serde(deserialize_with = "go_duration")]` for `Duration` fields.
pub(crate) fn go_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    GoDuration::deserialize(deserializer).map(|d| d.0)
}

/// `#[serde(default, deserialize_with = "opt_go_duration")]` for `Option<Duration>` fields.
pub(crate) fn opt_go_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<GoDuration>::deserialize(deserializer)?.map(|d| d.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Duration {
        parse_go_duration(s).unwrap()
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(p("1h"), Duration::from_secs(3600));
        assert_eq!(p("10m"), Duration::from_secs(600));
        assert_eq!(p("1h30m"), Duration::from_secs(5400));
        assert_eq!(p("1h5s"), Duration::from_secs(3605));
        assert_eq!(p("100ms"), Duration::from_millis(100));
        assert_eq!(p("1s"), Duration::from_secs(1));
        assert_eq!(p("1.5s"), Duration::from_millis(1500));
        assert_eq!(p(".5h"), Duration::from_secs(1800));
        assert_eq!(p("2us"), Duration::from_micros(2));
        assert_eq!(p("2µs"), Duration::from_micros(2));
        assert_eq!(p("7ns"), Duration::from_nanos(7));
        assert_eq!(p("0"), Duration::ZERO);
        assert_eq!(p("0s"), Duration::ZERO);
        assert_eq!(p("24h"), Duration::from_secs(86400));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "1", "h", "1x", "-1h", "1h-5m", "1..5s", "abc", "1 h"] {
            let e = parse_go_duration(bad).unwrap_err();
            assert!(e.to_string().contains("Go duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }
}
