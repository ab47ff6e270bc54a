//! Test vectors come from Kratos' own hash comparator and import tests, so
//! they are hashes Kratos is known to accept.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{
    HashError, Hasher, HasherConfig, PasswordPolicy, PolicyConfig, PolicyViolation, validate_encoded,
};

fn cheap_argon2() -> HasherConfig {
    HasherConfig::Argon2 {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        salt_length: 16,
        key_length: 32,
    }
}

fn hasher() -> Hasher {
    Hasher::new(HasherConfig::Bcrypt { cost: 4 }, 2)
}

/// (password, hash) pairs that must verify.
const VALID: &[(&str, &str)] = &[
    // bcrypt
    (
        "test",
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
    ),
    (
        "123456",
        "$2a$10$ZsCsoVQ3xfBG/K2z2XpBf.tm90GZmtOqtqWcB5.pYd5Eq8y7RlDyq",
    ),
    (
        "foobar",
        "$2a$08$.cOYmAd.vCpDOoiVJrO5B.hjTLKQQ6cAK40u8uB.FnZDyPvVvQ9Q.",
    ),
    // argon2
    (
        "test",
        "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
    ),
    (
        "test",
        "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4",
    ),
    (
        "123456",
        "$argon2id$v=19$m=16,t=2,p=1$bVI1aE1SaTV6SGQ3bzdXdw$fnjCcZYmEPOUOjYXsT92Cg",
    ),
    (
        "test",
        "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c",
    ),
    // pbkdf2 (sha224/sha384 are SHA3 in Kratos)
    (
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "test",
        "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc",
    ),
    (
        "test",
        "$pbkdf2-sha224$i=100000,l=32$A2nzbFd+wwzPSb+TqkF5Pw$9M4GM2yOYw/fZvsvQbF/0Ec8JO2u9O1MYRTfrDimX6o",
    ),
    (
        "test",
        "$pbkdf2-sha384$i=100000,l=32$xDInuz7Y/DPzZUnCaQXJmg$7ICaEa6jEqxbbCBbv4YzrBf39KYNAtc3Bj0QWKeB3Ck",
    ),
    // Cheap vectors from Python's hashlib, an independent implementation.
    (
        "hunter2",
        "$pbkdf2-sha224$i=1000,l=32$c2FsbHlwb3J0LXNhbHQtMQ$eQH/iHVHQACjFt/OmwVtOaSEiVLlQTnwap65IgAoHmc",
    ),
    (
        "hunter2",
        "$pbkdf2-sha384$i=1000,l=32$c2FsbHlwb3J0LXNhbHQtMQ$dPusiNJBgQfrGv2hyvMXpAljjaLOi2SXLMmjgK2eNmM",
    ),
    (
        "hunter2",
        "$pbkdf2-sha1$i=1000,l=32$c2FsbHlwb3J0LXNhbHQtMQ$jvji2HyAzMz//x/rM5icxPCe6CKoGjUvt2kowNIKRk0",
    ),
    // scrypt
    (
        "test",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    (
        "123456",
        "$scrypt$ln=16384,r=8,p=1$ZtQva9xCHzlSELH/mA7Kj5KjH2tCrkbwYzdxknkL0QQ=$pnTcXKaWVT+FwFDdk3vO1K0J7ZgOxdSU1tCJNYmn8zI=",
    ),
    // firebase scrypt
    (
        "8x4WjoDbSxJZdR",
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==$YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyw==",
    ),
    // SSHA
    ("test123", "{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a"),
    (
        "test123",
        "{SSHA256}czO44OTV17PcF1cRxWrLZLy9xHd7CWyVYplr1rOhuMlx/7IK",
    ),
    (
        "test123",
        "{SSHA512}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M=",
    ),
    // sha with salting pattern
    (
        "test",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
    ),
    (
        "BwS^514g^cv@Z",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$99h9net4BXl7qdTRaiGUobLROxM=",
    ),
    (
        "test",
        "$sha1$pf=Pz9zdGF0aWNQcmVmaXg/P3tTQUxUfXtQQVNTV09SRH0=$NW9wbWtnejAzcg==$SAAxMUn7jxckQXkBmsVF0nHwqso=",
    ),
    (
        "test",
        "$sha1$pf=e1BBU1NXT1JEfSUle1NBTFR9$NW9wbWtnejAzcg==$YX0AW8/MW5ojUlnzTaR43ucHCog=",
    ),
    (
        "test",
        "$sha1$pf=JHtQQVNTV09SRH0ke1NBTFR9JA==$NW9wbWtnejAzcg==$iE5n1yjX3oAdxRHwZ4u57I4LpQo=",
    ),
    (
        "test",
        "$sha256$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$0gfRVLCvtBCk20udLDEY5vNhujWx7RGjwRIS1ebMsLY=",
    ),
    (
        "test",
        "$sha256$pf=e1NBTFR9JCR7UEFTU1dPUkR9$NW9wbWtnejAzcg==$HokCOi9OtiZaZRvnkgemV3B4UUHpI7kA8zq/EZWH2NY=",
    ),
    (
        "test",
        "$sha512$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==",
    ),
    (
        "test",
        "$sha512$pf=e1NBTFR9JCR7UEFTU1dPUkR9$NW9wbWtnejAzcg==$1F9BPW8UtdJkZ9Dhlf+D4X4dJ9xfuH8y04EfuCP2k4aGPPq/aWxU9/xe3LydHmYW1/K3zu3NFO9ETVrZettz3w==",
    ),
    // md5
    ("test", "$md5$CY9rzUYh03PK3k6DJie09g=="),
    ("ory", "$md5$ptoWyof5SobW+pbZu2QXoQ=="),
    ("123456", "$md5$4QrcOUm6Wau+VuBX8g+IPg=="),
    (
        "test",
        "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$q+RdKCgc+ipCAcm5ChQwlQ==",
    ),
    (
        "test",
        "$md5$pf=e1NBTFR9JCR7UEFTU1dPUkR9$MTIzNA==$ud392Z8rfZ+Ou7ZFXYLKbA==",
    ),
    (
        "ory",
        "$md5$pf=e1BBU1NXT1JEfXtTQUxUfSQ/$MTIzNDU2Nzg5$8PhwWanVRnpJAFK4NUjR0w==",
    ),
    // md5-crypt
    ("test", "$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/"),
    ("test", "$md5-crypt$$whuMjZj.HMFoaTaZRRtkO0"),
    ("ory", "$md5-crypt$xWMlm2eL$GGTOpgZu4p2k6ORprAu3b."),
    // sha-crypt
    (
        "test",
        "$sha256-crypt$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78",
    ),
    (
        "ory",
        "$sha256-crypt$rounds=535000$awpcR7lDlnK/S7WE$vHU7KkQwyjfGz6u4MUi7.lH9htK/l63HloTsX1ZMz.3",
    ),
    (
        "test",
        "$sha512-crypt$rounds=656000$3LVbIAVxR//cRajw$uuNasMW.RYxlGzIRFU1Was70BPSa933AjxhZIGJdJBOlqJAHlgqa0yuiuq5JHF/ryNGryJkj87G9i3G2HPSXg1",
    ),
    // hmac: the stored value is base64 of the lower-case hex digest
    (
        "test",
        "$hmac-md4$MWQ5ZTI4Nzc2Zjg4YmE2MTQ5YjQ0OTMyOGE4NWU4YjA=$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-sha1$NDMyNjcxZTUyY2Y2YTBmYjZjZDE2NjQxYjAwNjFiZjAwOGEzNWM5MA==$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-sha224$YmUwYmYzM2EwNGRlNDE0YjQzNjBhNmIyOThmNmIyYzI4OWQyMzk3MDUwZDFjMzliYjVmMDMyOTQ=$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-sha256$ZTAzMWJhMWMyOTM4YjFkMjgzZjkxOWExZGY5YWM2NmMxOTJhN2RkNzQ0MzJkNWZkNGFkYTI5OTk0MWJhMTA5Zg==$MTIzNDU=",
    ),
    (
        "123456",
        "$hmac-sha256$YjhhZDA4YTNhNTQ3ZTM1ODI5YjgyMWI3NTM3MDMwMWRkOGM0YjA2YmRkNzc3MWY5YjU0MWE3NTkxNDA2ODcxOA==$MTIzNDU2",
    ),
    (
        "test",
        "$hmac-sha384$ZWEyMGM3NGE4Y2UzMTljNTdjZTlhZGQyYTZjNDE0MGQ4YjMwYWIwOWM4OTRiNWQ4MmZjODlhMzBhMmQzNGE5NmQ0NDY1NWRhYjQ2ZjhiYjBkNTRmYjk5YWZkZTA1MGY1$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-sha512$OTFmODY0ZTI1NmU0ZjVhYjhiMDViZGFmNGVmNGZmMGVlNTY4ODYwNWJhYTk4MTk2OTgyMzc3NzI1YTc4MzcxMTMzNzZmY2YxYTk5MGMxM2RiZDk2MGFmMmQ1YzRmODdlMGMwYTNkYjcyNjY0NjM4NGE4YzQ2MjNhZDZkN2UxZTE=$MTIzNDU=",
    ),
];

/// (password, hash) pairs that parse but must not verify.
const MISMATCH: &[(&str, &str)] = &[
    // A longer salt and a longer digest still decode; they just differ.
    (
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXcc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpII",
    ),
    (
        "test",
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL7",
    ),
    (
        "test",
        "$argon2i$v=19$m=65536,t=3,p=4$pZ+27D6B0bCi0DwSmANF1w$4RNCUu4Uyu7eTIvzIdSuKz+I9idJlX/ykn6J10/W0EU",
    ),
    (
        "wrong",
        "$pbkdf2-sha224$i=1000,l=32$c2FsbHlwb3J0LXNhbHQtMQ$eQH/iHVHQACjFt/OmwVtOaSEiVLlQTnwap65IgAoHmc",
    ),
    (
        "tesu",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    ("badtest", "{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a"),
    (
        "badtest",
        "{SSHA512}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M=",
    ),
    (
        "wrongpass",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
    ),
    (
        "tset",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
    ),
    (
        "test",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$cDJvb3ZrZGJ6cQ==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
    ),
    (
        "wrongpass",
        "$sha512$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==",
    ),
    ("test", "$md5$WhBei51A4TKXgNYuoiZdig=="),
    (
        "test",
        "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$hh8ZTp1hGPPZQqcr4+UXSQ==",
    ),
    (
        "test1",
        "$md5$pf=e1NBTFR9JCR7UEFTU1dPUkR9$MTIzNA==$ud392Z8rfZ+Ou7ZFXYLKbA==",
    ),
    ("test", "$md5-crypt$xWMlm2eL$GGTOpgZu4p2k6ORprAu3b."),
    ("ory", "$md5-crypt$$"),
    (
        "ory",
        "$sha256-crypt$rounds=535000$T95kH8e37IGVdxzJ$gLeaNa6qRog.bx4Bzqp63ceWItH6nSAal6c3WmT5GHB",
    ),
    (
        "ory",
        "$hmac-md4$MWQ5ZTI4Nzc2Zjg4YmE2MTQ5YjQ0OTMyOGE4NWU4YjA=$MTIzNDU=",
    ),
    (
        "test",
        "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNA==",
    ),
    ("test", "$hmac-md5$$MTIzNDU="),
    ("test", "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$"),
    (
        "ory",
        "$hmac-sha512$OTFmODY0ZTI1NmU0ZjVhYjhiMDViZGFmNGVmNGZmMGVlNTY4ODYwNWJhYTk4MTk2OTgyMzc3NzI1YTc4MzcxMTMzNzZmY2YxYTk5MGMxM2RiZDk2MGFmMmQ1YzRmODdlMGMwYTNkYjcyNjY0NjM4NGE4YzQ2MjNhZDZkN2UxZTE=$MTIzNDU=",
    ),
];

/// Runs every verification concurrently; the hasher's own limit (2, one
/// per core) decides how many actually compute at once.
async fn verify_all(cases: &[(&'static str, &'static str)]) -> Vec<(&'static str, bool)> {
    let hasher = hasher();
    let mut set = tokio::task::JoinSet::new();
    for &(password, encoded) in cases {
        let hasher = hasher.clone();
        set.spawn(async move {
            let result = hasher.verify(password.as_bytes(), encoded).await;
            (encoded, result.unwrap_or_else(|e| panic!("{encoded}: {e}")))
        });
    }
    set.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kratos_vectors_verify() {
    for (encoded, ok) in verify_all(VALID).await {
        assert!(ok, "{encoded} should verify");
        validate_encoded(encoded).unwrap();
    }
    // SHA3 and sha-crypt are unoptimised in dev builds and take seconds;
    // their mismatch path is covered by the cheap vectors of the same kind.
    let slow = |e: &str| {
        e.contains("-crypt$rounds=") || e.contains("-sha224$i=100000") || e.contains("-sha384$i=100000")
    };
    let wrong: Vec<_> = VALID
        .iter()
        .filter(|(_, e)| !slow(e))
        .map(|&(_, e)| ("definitely-wrong", e))
        .collect();
    for (encoded, ok) in verify_all(&wrong).await {
        assert!(!ok, "{encoded} must not verify a wrong password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kratos_vectors_mismatch() {
    for (encoded, ok) in verify_all(MISMATCH).await {
        assert!(!ok, "{encoded} must not verify");
    }
}

#[tokio::test]
async fn bcrypt_variant_prefixes_verify() {
    let hasher = hasher();
    let encoded = hasher.hash(b"variant").await.unwrap();
    let body = encoded.strip_prefix("$2a$").unwrap();
    for prefix in ["$2$", "$2a$", "$2b$", "$2y$", "$2z$"] {
        let variant = format!("{prefix}{body}");
        assert!(hasher.verify(b"variant", &variant).await.unwrap(), "{variant}");
        assert!(!hasher.verify(b"other", &variant).await.unwrap(), "{variant}");
    }
    // `$2x$` is not a format Kratos recognises.
    assert!(matches!(
        hasher.verify(b"variant", &format!("$2x${body}")).await,
        Err(HashError::UnknownFormat)
    ));
}

#[tokio::test]
async fn malformed_hashes_are_errors() {
    let hasher = hasher();
    let cases = [
        "$pbkdf2-sha256$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        "$pbkdf2-sha256$aaaa$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        // Go's strict raw decoder also rejects non-zero trailing bits.
        "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRN2",
        "$pbkdf2-sha512$I=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc",
        "$scrypt$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=16384,r=8,p=1$(2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=16385,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=abc,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "{SSHA}tooshort",
        "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$5opmkgz03r$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$sha1$pf=$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$sha1$$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$sha1$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$md5$$",
        "$md5$$$",
        "$md5$pf=$$",
        "$md5$pf=MTIz$Z$",
        "$md5$pf=MTIz$MTIz$Z",
        "$md5-crypt$$$",
        "$md5-crypt$whuMjZj.HMFoaTaZRRtkO0",
        "$sha256-crypt$$",
        "$sha256-crypt$$$",
        "$sha512-crypt$$",
        "$sha512-crypt$$$",
        "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=",
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==$YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyc==",
        "$hmac-md5$MTIzNDU=",
        "$hmac-md5$",
        "$2a$12$tooshort",
        "$argon2id$v=18$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        // An empty digest would otherwise match every password.
        "$pbkdf2-sha256$i=1000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$",
    ];
    for encoded in cases {
        let result = hasher.verify(b"test", encoded).await;
        assert!(
            matches!(result, Err(HashError::Malformed(_))),
            "{encoded}: {result:?}"
        );
    }
}

#[tokio::test]
async fn unknown_formats_are_rejected() {
    let hasher = hasher();
    for encoded in [
        "$unknown$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "$hmac$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=",
        "$hmac-invalid$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=",
        "{SSHAnotExistent}xPUl/px+1cG55rUH4rzcwxdOIPSB2TingLpiJJumN2xyDWN4Ix1WQG3ihnvHaWUE8MYNkvMi5rf0C9NYixHsE6Yh59M=",
        "$shaNotExistent$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==",
        "$5$rounds=535000$awpcR7lDlnK/S7WE$vHU7KkQwyjfGz6u4MUi7.lH9htK/l63HloTsX1ZMz.3",
        "plaintext",
        "",
    ] {
        assert!(
            matches!(
                hasher.verify(b"test", encoded).await,
                Err(HashError::UnknownFormat)
            ),
            "{encoded}"
        );
        assert!(matches!(validate_encoded(encoded), Err(HashError::UnknownFormat)));
    }
}

#[tokio::test]
async fn out_of_bounds_parameters_are_rejected() {
    let hasher = hasher();
    for encoded in [
        "$firescrypt$ln=31,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA==$Bw==$a2V5a2V5",
        "$firescrypt$ln=18,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA==$Bw==$a2V5a2V5",
        "$firescrypt$ln=14,r=1024,p=1$c2FsdHNhbHRzYWx0$aGFzaA==$Bw==$a2V5a2V5",
        "$firescrypt$ln=14,r=8,p=1024$c2FsdHNhbHRzYWx0$aGFzaA==$Bw==$a2V5a2V5",
        "$scrypt$ln=2097153,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA==",
        "$scrypt$ln=16384,r=1024,p=1$c2FsdHNhbHRzYWx0$aGFzaA==",
        "$scrypt$ln=262144,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA==",
        "$argon2id$v=19$m=8388608,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=65536,t=1000,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=65536,t=2,p=17$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2i$v=19$m=8388608,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c",
        "$pbkdf2-sha256$i=1000000000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        "$pbkdf2-sha256$i=0,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        "$2a$20$abcdefghijklmnopqrstuugn/uitWMnDoOdJaSWqW1pjEXZ8eOSCqK",
        "$2a$16$abcdefghijklmnopqrstuugn/uitWMnDoOdJaSWqW1pjEXZ8eOSCqK",
    ] {
        assert!(
            matches!(hasher.verify(b"test", encoded).await, Err(HashError::Bounds(_))),
            "{encoded}"
        );
        assert!(
            matches!(validate_encoded(encoded), Err(HashError::Bounds(_))),
            "{encoded}"
        );
    }
}

#[test]
fn validate_encoded_accepts_realistic_hashes() {
    for encoded in [
        "$2a$15$GRvRO2nrpYTEuPQX6AieaOlZ4.7nMGsXpt.QWMev1zrP86JNspZbO",
        "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c",
        "$sha256-crypt$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78",
        // Formats without cost parameters are accepted on their prefix, as
        // Kratos does on import.
        "$md5$not-base64!",
    ] {
        validate_encoded(encoded).unwrap();
        Hasher::validate_encoded(encoded).unwrap();
    }
    assert!(matches!(
        validate_encoded("$pbkdf2-sha256$i=1000,l=32$!!$QJxz"),
        Err(HashError::Malformed(_))
    ));
}

#[tokio::test]
async fn bcrypt_round_trip_uses_2a_prefix() {
    let hasher = Hasher::new(HasherConfig::Bcrypt { cost: 4 }, 1);
    let encoded = hasher.hash(b"correct horse").await.unwrap();
    assert!(encoded.starts_with("$2a$04$"), "{encoded}");
    assert_eq!(encoded.len(), 60);
    assert!(hasher.verify(b"correct horse", &encoded).await.unwrap());
    assert!(!hasher.verify(b"correct horsf", &encoded).await.unwrap());
    // Cross-check against an independent implementation.
    assert!(bcrypt::verify(b"correct horse", &encoded).unwrap());
}

#[tokio::test]
async fn bcrypt_accepts_exactly_72_bytes_and_rejects_more() {
    let hasher = hasher();
    let max = vec![b'a'; 72];
    let encoded = hasher.hash(&max).await.unwrap();
    assert!(hasher.verify(&max, &encoded).await.unwrap());

    let too_long = vec![b'a'; 73];
    assert!(matches!(
        hasher.hash(&too_long).await,
        Err(HashError::PasswordTooLong { max: 72, actual: 73 })
    ));
    // Verifying must not silently compare the truncated prefix either.
    let err = hasher.verify(&too_long, &encoded).await.unwrap_err();
    assert!(matches!(err, HashError::PasswordTooLong { max: 72, actual: 73 }));
    assert_eq!(err.message_id(), Some(4000033));
}

#[tokio::test]
async fn argon2id_round_trip() {
    let hasher = Hasher::new(cheap_argon2(), 1);
    let encoded = hasher.hash(b"correct horse").await.unwrap();
    let parts: Vec<&str> = encoded.split('$').collect();
    assert_eq!(parts[..4], ["", "argon2id", "v=19", "m=64,t=1,p=1"]);
    // 16-byte salt and 32-byte key, base64 without padding.
    assert_eq!(parts[4].len(), 22);
    assert_eq!(parts[5].len(), 43);
    assert!(hasher.verify(b"correct horse", &encoded).await.unwrap());
    assert!(!hasher.verify(b"correct horsf", &encoded).await.unwrap());
    // Long passwords are fine for argon2.
    let long = vec![b'x'; 200];
    let encoded = hasher.hash(&long).await.unwrap();
    assert!(hasher.verify(&long, &encoded).await.unwrap());
}

#[tokio::test]
async fn invalid_configs_are_rejected() {
    for config in [
        HasherConfig::Bcrypt { cost: 3 },
        HasherConfig::Bcrypt { cost: 16 },
        HasherConfig::Argon2 {
            memory_kib: 64,
            iterations: 0,
            parallelism: 1,
            salt_length: 16,
            key_length: 32,
        },
        HasherConfig::Argon2 {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            salt_length: 4,
            key_length: 32,
        },
    ] {
        let hasher = Hasher::new(config.clone(), 1);
        assert!(
            matches!(hasher.hash(b"pw").await, Err(HashError::InvalidConfig(_))),
            "{config:?}"
        );
    }
}

#[tokio::test]
async fn needs_rehash_detects_algorithm_and_parameter_changes() {
    let bcrypt4 = Hasher::new(HasherConfig::Bcrypt { cost: 4 }, 1);
    let bcrypt5 = Hasher::new(HasherConfig::Bcrypt { cost: 5 }, 1);
    let argon = Hasher::new(cheap_argon2(), 1);
    let argon_more_memory = Hasher::new(
        HasherConfig::Argon2 {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
            salt_length: 16,
            key_length: 32,
        },
        1,
    );

    let b4 = bcrypt4.hash(b"pw").await.unwrap();
    let a = argon.hash(b"pw").await.unwrap();

    assert!(!bcrypt4.needs_rehash(&b4));
    assert!(!bcrypt4.needs_rehash(&b4.replacen("$2a$", "$2y$", 1)));
    assert!(bcrypt5.needs_rehash(&b4));
    assert!(bcrypt4.needs_rehash(&a));

    assert!(!argon.needs_rehash(&a));
    assert!(argon_more_memory.needs_rehash(&a));
    assert!(argon.needs_rehash(&b4));
    assert!(argon.needs_rehash(&a.replacen("$argon2id$", "$argon2i$", 1)));
    assert!(argon.needs_rehash("$md5$CY9rzUYh03PK3k6DJie09g=="));
    assert!(argon.needs_rehash("garbage"));
}

#[tokio::test]
async fn verify_dummy_computes_a_real_hash_once() {
    let hasher = Hasher::new(HasherConfig::Bcrypt { cost: 4 }, 1);
    hasher.verify_dummy(b"anything").await;
    let first = hasher.inner_dummy_for_test().unwrap();
    hasher.verify_dummy(b"anything else").await;
    assert_eq!(hasher.inner_dummy_for_test().unwrap(), first);
    assert!(first.starts_with("$2a$04$"));
    // Over-long input takes the same early exit as a real bcrypt verify.
    hasher.verify_dummy(&[b'a'; 100]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_by_the_semaphore() {
    let hasher = Hasher::new(cheap_argon2(), 1);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(format!("pw{i}").as_bytes()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(hasher.stats().peak.load(Ordering::SeqCst), 1);
    assert_eq!(hasher.stats().running.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------
// Password policy
// ---------------------------------------------------------------------------

fn sha1_hex(password: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Minimal HIBP stand-in: answers `/range/<prefix>` with `body_for(prefix)`
/// and counts requests. Returns the base URL.
async fn start_hibp(
    body_for: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let hits_server = Arc::clone(&hits);
    let body_for = Arc::new(body_for);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body_for = Arc::clone(&body_for);
            let hits = Arc::clone(&hits_server);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let request = String::from_utf8_lossy(&buf);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let prefix = path.strip_prefix("/range/").unwrap_or("");
                let (status, body) = body_for(prefix);
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

fn policy_with(host: String, ignore_network_errors: bool) -> PasswordPolicy {
    PasswordPolicy::new(
        PolicyConfig {
            haveibeenpwned_host: host,
            ignore_network_errors,
            ..PolicyConfig::default()
        },
        reqwest::Client::new(),
    )
}

const BREACHED: &str = "password123";
const CLEAN: &str = "l3f9toh1uaf81n21";

async fn hibp_with_breached_password() -> (String, Arc<AtomicUsize>) {
    let breached = sha1_hex(BREACHED);
    start_hibp(move |prefix| {
        let mut body = String::from("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n");
        if breached.starts_with(prefix) {
            body.push_str(&format!("{}:2,254,650\r\n", &breached[5..]));
        }
        body.push_str("FFFFF45C4D1DEF81644B54AB7F969B88D65:3");
        (200, body)
    })
    .await
}

#[tokio::test]
async fn breached_password_is_rejected_and_cached() {
    let (url, hits) = hibp_with_breached_password().await;
    let policy = policy_with(url, false);
    let err = policy.validate("user@example.com", BREACHED).await.unwrap_err();
    assert_eq!(err, PolicyViolation::Breached { count: 2_254_650 });
    assert_eq!(err.message_id(), 4000034);

    // Same password again is served from the cache.
    policy.validate("user@example.com", BREACHED).await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn clean_password_passes() {
    let (url, hits) = hibp_with_breached_password().await;
    let policy = policy_with(url, false);
    policy.validate("user@example.com", CLEAN).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn max_breaches_is_a_threshold() {
    let (url, _) = hibp_with_breached_password().await;
    let policy = PasswordPolicy::new(
        PolicyConfig {
            haveibeenpwned_host: url,
            max_breaches: 2_254_650,
            ..PolicyConfig::default()
        },
        reqwest::Client::new(),
    );
    policy.validate("", BREACHED).await.unwrap();
}

async fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn unreachable_service_fails_open_by_default() {
    let policy = policy_with(unreachable_url().await, true);
    policy.validate("user@example.com", CLEAN).await.unwrap();
}

#[tokio::test]
async fn unreachable_service_is_an_error_when_not_ignored() {
    let policy = policy_with(unreachable_url().await, false);
    let err = policy.validate("user@example.com", CLEAN).await.unwrap_err();
    assert!(matches!(err, PolicyViolation::NetworkError(_)), "{err:?}");
    assert!(err.is_upstream_error());
}

#[tokio::test]
async fn non_200_status_follows_ignore_network_errors() {
    let (url, _) = start_hibp(|_| (500, String::new())).await;
    policy_with(url.clone(), true).validate("", CLEAN).await.unwrap();
    assert!(matches!(
        policy_with(url, false).validate("", CLEAN).await,
        Err(PolicyViolation::NetworkError(_))
    ));
}

#[tokio::test]
async fn malformed_count_is_an_error_even_when_ignoring_network_errors() {
    let (url, _) = start_hibp(|_| (200, "ABCDEF:text".to_owned())).await;
    assert!(matches!(
        policy_with(url, true).validate("", CLEAN).await,
        Err(PolicyViolation::NetworkError(_))
    ));
}

#[tokio::test]
async fn line_without_count_counts_as_one_breach() {
    let suffix = sha1_hex(CLEAN)[5..].to_owned();
    let (url, _) = start_hibp(move |_| (200, suffix.clone())).await;
    assert_eq!(
        policy_with(url, false).validate("", CLEAN).await,
        Err(PolicyViolation::Breached { count: 1 })
    );
}

#[tokio::test]
async fn length_and_similarity_are_checked_before_the_network() {
    let (url, hits) = hibp_with_breached_password().await;
    let policy = policy_with(url, false);
    assert_eq!(
        policy.validate("", "1234567").await,
        Err(PolicyViolation::TooShort { min: 8, actual: 7 })
    );
    // Eight bytes but only four characters: length is measured in bytes.
    policy.validate("", "äöüß").await.unwrap();
    assert_eq!(
        policy
            .validate("hello@example.com", "hello@example.com12345")
            .await,
        Err(PolicyViolation::TooSimilar)
    );
    assert_eq!(PolicyViolation::TooSimilar.message_id(), 4000031);
    assert_eq!(
        PolicyViolation::TooShort { min: 8, actual: 7 }.message_id(),
        4000032
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn disabled_checks_are_skipped() {
    let policy = PasswordPolicy::new(
        PolicyConfig {
            identifier_similarity_check_enabled: false,
            haveibeenpwned_enabled: false,
            haveibeenpwned_host: unreachable_url().await,
            ignore_network_errors: false,
            ..PolicyConfig::default()
        },
        reqwest::Client::new(),
    );
    policy
        .validate("hello@example.com", "hello@example.com")
        .await
        .unwrap();
}

#[test]
fn bcrypt_length_helper() {
    crate::check_bcrypt_length(&[b'a'; 72]).unwrap();
    let err = crate::check_bcrypt_length(&[b'a'; 73]).unwrap_err();
    assert_eq!(err, PolicyViolation::TooLong { max: 72, actual: 73 });
    assert_eq!(err.message_id(), 4000033);
    assert_eq!(
        err.to_string(),
        "The password must be at most 72 characters long, but got 73."
    );
}
