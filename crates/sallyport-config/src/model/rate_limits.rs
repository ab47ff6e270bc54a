//! `sallyport.rate_limits`: budgets against brute force and mail bombing (Kratos has none).
//! Every field is optional; what is left out takes the default written next to it, so an operator
//! can change one number without restating the rest.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::duration::opt_go_duration;

/// `sallyport.rate_limits.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Codes and links sent per recipient address. Default 10 per hour.
    pub codes_sent_per_address: LimitConfig,
    /// Code submissions per identity (or address, before an identity exists). Default 10 per hour.
    pub code_guesses_per_identity: LimitConfig,
    /// Wrong passwords per identifier before the back-off starts. Default 10 per hour, then 1 s
    /// doubling up to 5 min.
    pub password_failures_per_identifier: PasswordLimitConfig,
    /// TOTP and backup-code submissions at aal2 per identity. Default 10 per hour.
    pub second_factor_guesses_per_identity: LimitConfig,
    pub per_ip: PerIpConfig,
}

/// A budget: `limit` hits per `window`; `enabled: false` turns it off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    pub enabled: Option<bool>,
    pub limit: Option<NonZeroU32>,
    #[serde(deserialize_with = "opt_go_duration")]
    pub window: Option<Duration>,
}

/// A budget in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window: Duration,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {}", self.limit, crate::format_go_duration(self.window))
    }
}

impl LimitConfig {
    /// The budget in effect, `None` when disabled.
    pub fn resolve(&self, on_by_default: bool, limit: u32, window: Duration) -> Option<Limit> {
        if !self.enabled.unwrap_or(on_by_default) {
            return None;
        }
        Some(Limit {
            limit: self.limit.map_or(limit, NonZeroU32::get),
            window: self.window.filter(|w| !w.is_zero()).unwrap_or(window),
        })
    }
}

/// `password_failures_per_identifier`: a budget plus the back-off past it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordLimitConfig {
    pub enabled: Option<bool>,
    pub limit: Option<NonZeroU32>,
    #[serde(deserialize_with = "opt_go_duration")]
    pub window: Option<Duration>,
    #[serde(deserialize_with = "opt_go_duration")]
    pub backoff: Option<Duration>,
    #[serde(deserialize_with = "opt_go_duration")]
    pub max_backoff: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordLimit {
    pub limit: Limit,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl PasswordLimitConfig {
    pub fn resolve(&self) -> Option<PasswordLimit> {
        let limit = LimitConfig {
            enabled: self.enabled,
            limit: self.limit,
            window: self.window,
        }
        .resolve(true, 10, Duration::from_secs(3600))?;
        let backoff = self
            .backoff
            .filter(|b| !b.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let max_backoff = self.max_backoff.unwrap_or(Duration::from_secs(300)).max(backoff);
        Some(PasswordLimit {
            limit,
            backoff,
            max_backoff,
        })
    }
}

/// `sallyport.rate_limits.per_ip.*`: off by default — behind a proxy every client has the proxy's
/// address until `trusted_proxies` names it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerIpConfig {
    pub enabled: bool,
    /// Self-service flow creations per client IP. Default 60 per minute.
    pub flow_creations: LimitConfig,
    /// Self-service flow submissions per client IP. Default 60 per minute.
    pub submissions: LimitConfig,
    /// Peers whose `X-Forwarded-For` is believed: addresses or CIDR blocks.
    pub trusted_proxies: Vec<Cidr>,
}

impl PerIpConfig {
    pub fn flow_creations(&self) -> Option<Limit> {
        if !self.enabled {
            return None;
        }
        self.flow_creations.resolve(true, 60, Duration::from_secs(60))
    }

    pub fn submissions(&self) -> Option<Limit> {
        if !self.enabled {
            return None;
        }
        self.submissions.resolve(true, 60, Duration::from_secs(60))
    }
}

impl RateLimits {
    pub fn codes_sent(&self) -> Option<Limit> {
        self.codes_sent_per_address
            .resolve(true, 10, Duration::from_secs(3600))
    }

    pub fn code_guesses(&self) -> Option<Limit> {
        self.code_guesses_per_identity
            .resolve(true, 10, Duration::from_secs(3600))
    }

    pub fn second_factor_guesses(&self) -> Option<Limit> {
        self.second_factor_guesses_per_identity
            .resolve(true, 10, Duration::from_secs(3600))
    }
}

/// An address block such as `10.0.0.0/8`, `fd00::/8`, or one address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad =
            || format!("{s:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let block: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(block.contains("10.200.1.2".parse().unwrap()));
        assert!(!block.contains("11.0.0.1".parse().unwrap()));
        assert!(
            block.contains("::ffff:10.1.2.3".parse().unwrap()),
            "v4-mapped v6 peers"
        );
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
