//! Byte sizes as Kratos writes them (`"128MB"`, `"1KB"`, `"1GB"`); units are powers of 1024.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

const UNITS: &[(&str, u32)] = &[
    ("B", 0),
    ("KB", 1),
    ("MB", 2),
    ("GB", 3),
    ("TB", 4),
    ("PB", 5),
    ("EB", 6),
];

/// Why a string is not a byte size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a valid byte size; expected a number followed by B, KB, MB, GB, TB, PB or EB, e.g. \"128MB\""
)]
pub struct ByteSizeError(pub String);

impl ByteSize {
    /// Kibibytes.
    pub const KB: u64 = 1024;
    /// Mebibytes.
    pub const MB: u64 = 1024 * 1024;

    /// Size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Size in whole KiB (argon2's memory parameter unit).
    pub fn kibibytes(self) -> u64 {
        self.0 / Self::KB
    }

    /// Parses `"<digits><unit>"`; the unit is case-insensitive, `"128MiB"` is accepted too.
    pub fn parse(input: &str) -> Result<Self, ByteSizeError> {
        let err = || ByteSizeError(input.to_owned());
        let s = input.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let number: u64 = s[..digits].parse().map_err(|_| err())?;
        let unit = s[digits..].trim().to_ascii_uppercase().replace("IB", "B");
        let unit = if unit.is_empty() { "B".to_owned() } else { unit };
        let (_, power) = UNITS.iter().find(|(name, _)| *name == unit).ok_or_else(err)?;
        number
            .checked_mul(1024u64.pow(*power))
            .map(ByteSize)
            .ok_or_else(err)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, power) = UNITS
            .iter()
            .rev()
            .find(|(_, p)| self.0 != 0 && self.0.is_multiple_of(1024u64.pow(*p)))
            .unwrap_or(&("B", 0));
        write!(f, "{}{name}", self.0 / 1024u64.pow(*power))
    }
}

impl std::str::FromStr for ByteSize {
    type Err = ByteSizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(ByteSize::parse("128MB").unwrap().bytes(), 128 * 1024 * 1024);
        assert_eq!(ByteSize::parse("128MB").unwrap().kibibytes(), 131_072);
        assert_eq!(ByteSize::parse("1KB").unwrap().bytes(), 1024);
        assert_eq!(ByteSize::parse("1GB").unwrap().bytes(), 1 << 30);
        assert_eq!(ByteSize::parse("10B").unwrap().bytes(), 10);
        assert_eq!(ByteSize::parse("64kb").unwrap().bytes(), 65536);
        assert_eq!(ByteSize::parse("1MiB").unwrap().bytes(), 1 << 20);
        assert!(ByteSize::parse("MB").is_err());
        assert!(ByteSize::parse("12XB").is_err());
        assert_eq!(ByteSize(128 * 1024 * 1024).to_string(), "128MB");
    }
}
