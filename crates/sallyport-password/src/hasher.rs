//! Creating new hashes and verifying stored ones, off the async runtime and
//! with a bounded number running at once.

use std::sync::Arc;
#[cfg(test)]
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::sync::{OnceCell, Semaphore};

use crate::formats::{
    self, BCRYPT_MAX_PASSWORD_BYTES, MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM,
    MAX_BCRYPT_COST, MIN_BCRYPT_COST, Parsed,
};

/// Kratos message id for "The password must be at most N characters long".
const MESSAGE_ID_PASSWORD_MAX_LENGTH: u32 = 4000033;

/// A fixed input for the dummy hash; its value is irrelevant, only the cost
/// of verifying against it matters.
const DUMMY_PASSWORD: &[u8] = b"sallyport-dummy-password-for-timing";

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// bcrypt would silently ignore everything past 72 bytes.
    #[error("The password must be at most {max} characters long, but got {actual}.")]
    PasswordTooLong { max: usize, actual: usize },
    #[error("unknown hash algorithm")]
    UnknownFormat,
    /// The stored hash declares cost parameters beyond what we will compute.
    #[error("hash parameters exceed allowed bounds: {0}")]
    Bounds(String),
    #[error("the encoded hash is not in the correct format: {0}")]
    Malformed(String),
    #[error("invalid hasher configuration: {0}")]
    InvalidConfig(String),
    #[error("password hashing task failed: {0}")]
    Internal(String),
}

impl HashError {
    /// The Kratos UI message id when the error is user-facing.
    pub fn message_id(&self) -> Option<u32> {
        match self {
            HashError::PasswordTooLong { .. } => Some(MESSAGE_ID_PASSWORD_MAX_LENGTH),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HasherConfig {
    Bcrypt {
        cost: u32,
    },
    Argon2 {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        salt_length: u32,
        key_length: u32,
    },
}

impl HasherConfig {
    /// Rejects settings that could not be hashed, or whose hashes our own
    /// verifier would refuse for exceeding the import bounds.
    pub fn validate(&self) -> Result<(), HashError> {
        match *self {
            HasherConfig::Bcrypt { cost } => {
                if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost) {
                    return Err(HashError::InvalidConfig(format!(
                        "bcrypt cost {cost} not in [{MIN_BCRYPT_COST}, {MAX_BCRYPT_COST}]"
                    )));
                }
            }
            HasherConfig::Argon2 {
                memory_kib,
                iterations,
                parallelism,
                salt_length,
                key_length,
            } => {
                let bounded = [
                    ("memory", u64::from(memory_kib), MAX_ARGON2_MEMORY_KIB),
                    ("iterations", u64::from(iterations), MAX_ARGON2_ITERATIONS),
                    ("parallelism", u64::from(parallelism), MAX_ARGON2_PARALLELISM),
                ];
                for (name, value, max) in bounded {
                    if value == 0 || value > max {
                        return Err(HashError::InvalidConfig(format!(
                            "argon2 {name} {value} not in [1, {max}]"
                        )));
                    }
                }
                if (salt_length as usize) < argon2::MIN_SALT_LEN {
                    return Err(HashError::InvalidConfig(format!(
                        "argon2 salt length must be at least {}",
                        argon2::MIN_SALT_LEN
                    )));
                }
                self.argon2_params(key_length)?;
            }
        }
        Ok(())
    }

    fn argon2_params(&self, key_length: u32) -> Result<argon2::Params, HashError> {
        let HasherConfig::Argon2 {
            memory_kib,
            iterations,
            parallelism,
            ..
        } = *self
        else {
            return Err(HashError::InvalidConfig("not an argon2 config".into()));
        };
        argon2::Params::new(memory_kib, iterations, parallelism, Some(key_length as usize))
            .map_err(|e| HashError::InvalidConfig(format!("argon2: {e}")))
    }
}

/// Hashes and verifies passwords. Cheap to clone; clones share the
/// concurrency limit.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    config: HasherConfig,
    permits: Arc<Semaphore>,
    dummy_hash: OnceCell<String>,
    #[cfg(test)]
    stats: Arc<TestStats>,
}

#[cfg(test)]
#[derive(Default)]
pub(crate) struct TestStats {
    pub(crate) running: AtomicUsize,
    pub(crate) peak: AtomicUsize,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("config", &self.inner.config)
            .field("available_permits", &self.inner.permits.available_permits())
            .finish()
    }
}

impl Hasher {
    /// `max_concurrency` caps simultaneous hash computations (each may hold
    /// tens of MiB); excess requests wait for a permit. Zero is treated as 1.
    pub fn new(config: HasherConfig, max_concurrency: usize) -> Self {
        Hasher {
            inner: Arc::new(Inner {
                config,
                permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
                dummy_hash: OnceCell::new(),
                #[cfg(test)]
                stats: Arc::default(),
            }),
        }
    }

    pub fn config(&self) -> &HasherConfig {
        &self.inner.config
    }

    /// Same as the free function [`crate::validate_encoded`].
    pub fn validate_encoded(encoded: &str) -> Result<(), HashError> {
        formats::validate_encoded(encoded)
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> &TestStats {
        &self.inner.stats
    }

    #[cfg(test)]
    pub(crate) fn inner_dummy_for_test(&self) -> Option<String> {
        self.inner.dummy_hash.get().cloned()
    }

    /// Runs CPU/memory-heavy work on the blocking pool once a permit is
    /// available. The permit moves into the closure so it stays held until
    /// the work actually ends, even if the caller's future is dropped.
    async fn run_limited<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| HashError::Internal("hasher semaphore closed".into()))?;
        #[cfg(test)]
        let stats = Arc::clone(&self.inner.stats);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            {
                let now = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
                stats.peak.fetch_max(now, Ordering::SeqCst);
            }
            let result = work();
            #[cfg(test)]
            stats.running.fetch_sub(1, Ordering::SeqCst);
            result
        })
        .await
        .map_err(|e| HashError::Internal(e.to_string()))
    }

    /// Hashes with the configured algorithm: `$2a$` bcrypt or `$argon2id$`.
    pub async fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        let config = self.inner.config.clone();
        config.validate()?;
        if matches!(config, HasherConfig::Bcrypt { .. }) && password.len() > BCRYPT_MAX_PASSWORD_BYTES {
            return Err(HashError::PasswordTooLong {
                max: BCRYPT_MAX_PASSWORD_BYTES,
                actual: password.len(),
            });
        }
        let password = password.to_vec();
        self.run_limited(move || hash_blocking(&config, &password))
            .await?
    }

    /// `Ok(false)` means the password is wrong; `Err` means the stored hash
    /// could not be used at all (unknown, malformed or out of bounds).
    pub async fn verify(&self, password: &[u8], encoded: &str) -> Result<bool, HashError> {
        let parsed = formats::parse(encoded)?;
        if matches!(parsed, Parsed::Bcrypt { .. }) && password.len() > BCRYPT_MAX_PASSWORD_BYTES {
            return Err(HashError::PasswordTooLong {
                max: BCRYPT_MAX_PASSWORD_BYTES,
                actual: password.len(),
            });
        }
        let password = password.to_vec();
        self.run_limited(move || formats::verify_parsed(&parsed, &password))
            .await?
    }

    /// True when a successful login should replace the stored hash because
    /// it was not produced with the current configuration.
    pub fn needs_rehash(&self, encoded: &str) -> bool {
        let Ok(parsed) = formats::parse(encoded) else {
            return true;
        };
        match (&self.inner.config, parsed) {
            (HasherConfig::Bcrypt { cost }, Parsed::Bcrypt { cost: stored, .. }) => *cost != stored,
            (
                HasherConfig::Argon2 {
                    memory_kib,
                    iterations,
                    parallelism,
                    salt_length,
                    key_length,
                },
                Parsed::Argon2 {
                    algorithm: argon2::Algorithm::Argon2id,
                    params,
                    salt,
                    hash,
                },
            ) => {
                params.m_cost() != *memory_kib
                    || params.t_cost() != *iterations
                    || params.p_cost() != *parallelism
                    || salt.len() != *salt_length as usize
                    || hash.len() != *key_length as usize
            }
            _ => true,
        }
    }

    /// Spends as long as a real verification so a login for an unknown
    /// identifier cannot be told apart by its response time.
    pub async fn verify_dummy(&self, password: &[u8]) {
        let dummy = self
            .inner
            .dummy_hash
            .get_or_try_init(|| self.hash(DUMMY_PASSWORD))
            .await;
        match dummy {
            Ok(encoded) => {
                let _ = self.verify(password, encoded).await;
            }
            Err(err) => tracing::warn!(error = %err, "could not create dummy password hash"),
        }
    }
}

fn random_bytes(len: usize) -> Result<Vec<u8>, HashError> {
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).map_err(|e| HashError::Internal(format!("randomness: {e}")))?;
    Ok(buf)
}

fn hash_blocking(config: &HasherConfig, password: &[u8]) -> Result<String, HashError> {
    match *config {
        HasherConfig::Bcrypt { cost } => {
            let salt: [u8; 16] = random_bytes(16)?
                .try_into()
                .map_err(|_| HashError::Internal("salt length".into()))?;
            let parts = bcrypt::hash_with_salt(password, cost, salt)
                .map_err(|e| HashError::InvalidConfig(format!("bcrypt: {e}")))?;
            // Kratos writes `$2a$`; keep it so hashes round-trip through
            // tools that compare prefixes.
            Ok(parts.format_for_version(bcrypt::Version::TwoA))
        }
        HasherConfig::Argon2 {
            memory_kib,
            iterations,
            parallelism,
            salt_length,
            key_length,
        } => {
            let params = config.argon2_params(key_length)?;
            let salt = random_bytes(salt_length as usize)?;
            let mut out = vec![0u8; key_length as usize];
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password, &salt, &mut out)
                .map_err(|e| HashError::InvalidConfig(format!("argon2: {e}")))?;
            Ok(format!(
                "$argon2id$v=19$m={memory_kib},t={iterations},p={parallelism}${}${}",
                STANDARD_NO_PAD.encode(&salt),
                STANDARD_NO_PAD.encode(&out),
            ))
        }
    }
}
