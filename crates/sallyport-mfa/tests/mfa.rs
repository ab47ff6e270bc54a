//! Integration tests of the public API.

use base64::Engine as _;
use sallyport_mfa::*;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

/// RFC 6238 appendix B secret for SHA-1 ("12345678901234567890") in base32.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn rfc_key() -> TotpKey {
    parse_totp_url(&format!(
        "otpauth://totp/Test:rfc?secret={RFC_SECRET}&issuer=Test"
    ))
    .unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

// ---------------------------------------------------------------- TOTP

#[test]
fn rfc6238_sha1_vectors_truncated_to_six_digits() {
    let key = rfc_key();
    // 8-digit values of RFC 6238 appendix B; 6 digits keep the last six.
    let vectors = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];
    for (time, eight) in vectors {
        let six = &eight[2..];
        assert_eq!(generate_totp_code(&key, at(time)).unwrap(), six, "t={time}");
        assert_eq!(
            verify_totp(&key, six, at(time), None),
            Some(time / 30),
            "t={time}"
        );
    }
}

#[test]
fn skew_of_one_step_accepted_two_refused() {
    let key = rfc_key();
    let now = at(1_111_111_109);
    let step = totp_step(now);
    for (offset, expected) in [
        (-2, None),
        (-1, Some(step - 1)),
        (0, Some(step)),
        (1, Some(step + 1)),
        (2, None),
    ] {
        let code = generate_totp_code(&key, at((step + offset) * 30 + 5)).unwrap();
        assert_eq!(verify_totp(&key, &code, now, None), expected, "offset {offset}");
    }
}

#[test]
fn replay_refused_next_step_accepted() {
    let key = new_totp("Sallyport", "alice@example.com");
    let now = datetime!(2025-03-04 05:06:07 UTC);
    let code = generate_totp_code(&key, now).unwrap();
    let step = verify_totp(&key, &code, now, None).expect("fresh code verifies");
    assert_eq!(step, totp_step(now));

    // Same code again, even a few seconds later within the window: refused.
    assert_eq!(verify_totp(&key, &code, now, Some(step)), None);
    assert_eq!(
        verify_totp(&key, &code, now + time::Duration::seconds(25), Some(step)),
        None
    );
    // The previous step's code is also refused once a later step was used.
    let previous = generate_totp_code(&key, now - time::Duration::seconds(30)).unwrap();
    assert_eq!(verify_totp(&key, &previous, now, Some(step)), None);
    // The next step's code is accepted (both early, through skew, and on time).
    let later = now + time::Duration::seconds(30);
    let next = generate_totp_code(&key, later).unwrap();
    assert_eq!(verify_totp(&key, &next, now, Some(step)), Some(step + 1));
    assert_eq!(verify_totp(&key, &next, later, Some(step)), Some(step + 1));
    assert_eq!(verify_totp(&key, &next, later, Some(step + 1)), None);
}

#[test]
fn malformed_codes_rejected() {
    let key = rfc_key();
    let now = at(59);
    assert_eq!(verify_totp(&key, "287082", now, None), Some(1));
    assert_eq!(verify_totp(&key, " 287 082\n", now, None), Some(1));
    for bad in [
        "",
        "28708",
        "2870822",
        "28708a",
        "２８７０８２",
        "-28708",
        "+287082",
        "287082x",
    ] {
        assert_eq!(verify_totp(&key, bad, now, None), None, "{bad:?}");
    }
}

#[test]
fn new_totp_matches_pquerna_format() {
    let key = new_totp("Sallyport Inc", "alice@example.com");
    assert_eq!(key.secret_base32.len(), 32, "160-bit secret, no padding");
    assert!(
        key.secret_base32
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    assert_eq!(
        key.url,
        format!(
            "otpauth://totp/Sallyport%20Inc:alice@example.com?algorithm=SHA1&digits=6&issuer=Sallyport%20Inc&period=30&secret={}",
            key.secret_base32
        )
    );
    assert_eq!(key.issuer(), "Sallyport Inc");
    assert_eq!(key.account_name(), "alice@example.com");
    assert_eq!(parse_totp_url(&key.url).unwrap(), key);
    assert_ne!(new_totp("a", "b").secret_base32, new_totp("a", "b").secret_base32);
}

#[test]
fn parse_kratos_urls() {
    // From Kratos' identity import tests: an 80-bit secret (shorter than 128 bits).
    let url = "otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";
    let key = parse_totp_url(url).unwrap();
    assert_eq!(key.url, url);
    assert_eq!(key.secret_base32, "JBSWY3DPEHPK3PXP");
    assert_eq!(key.issuer(), "Example");
    assert_eq!(key.account_name(), "alice@example.com");
    let now = datetime!(2024-01-01 00:00:00 UTC);
    let code = generate_totp_code(&key, now).unwrap();
    assert!(verify_totp(&key, &code, now, None).is_some());

    // A URL as Kratos' generator writes it, lower-case/padded secret and spaces tolerated.
    let key = parse_totp_url(
        "  otpauth://totp/kratos.example:c6bb8e4b?algorithm=SHA1&digits=6&issuer=kratos.example&period=30&secret=jbsw%20y3dp=== \n",
    )
    .unwrap();
    assert_eq!(key.secret_base32, "JBSWY3DP");
    assert_eq!(key.account_name(), "c6bb8e4b");

    // Without an issuer parameter the label prefix is the issuer.
    let key = parse_totp_url("otpauth://totp/ACME%20Co:john?secret=JBSWY3DPEHPK3PXP").unwrap();
    assert_eq!(key.issuer(), "ACME Co");
    assert_eq!(key.account_name(), "john");
}

#[test]
fn parse_rejects_unusable_urls() {
    for url in [
        "otpauth://totp/test",               // Kratos test fixture without secret
        "otpauth://totp/x?secret=",          // empty secret
        "otpauth://totp/x?secret=NEWSECRET", // invalid base32 length
        "otpauth://totp/x?secret=JBSWY3DP1", // invalid base32 character
        "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=1", // not TOTP
        "https://totp/x?secret=JBSWY3DPEHPK3PXP",
        "not a url",
    ] {
        assert!(parse_totp_url(url).is_err(), "{url}");
    }
    let broken = TotpKey {
        url: String::new(),
        secret_base32: "!!".into(),
    };
    assert_eq!(verify_totp(&broken, "123456", at(59), None), None);
    assert!(generate_totp_code(&broken, at(59)).is_err());
}

#[test]
fn totp_config_helpers() {
    let url = "otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";
    let config = totp_credential_config(url);
    assert_eq!(config, json!({"totp_url": url}));
    assert_eq!(totp_url_from_config(&config).as_deref(), Some(url));
    assert_eq!(totp_url_from_config(&json!({"totp_url": ""})), None);
    assert_eq!(totp_url_from_config(&json!({})), None);

    assert_eq!(totp_last_used_step_from_config(&config), None);
    let config = totp_config_with_last_used_step(&config, 42);
    assert_eq!(config, json!({"totp_url": url, "last_used_step": 42}));
    assert_eq!(totp_last_used_step_from_config(&config), Some(42));
    let lowered = totp_config_with_last_used_step(&config, 41);
    assert_eq!(
        totp_last_used_step_from_config(&lowered),
        Some(42),
        "never lowered"
    );
}

// ---------------------------------------------------------------- QR

fn png_from_data_uri(uri: &str) -> Vec<u8> {
    let b64 = uri.strip_prefix("data:image/png;base64,").expect("PNG data URI");
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

/// Minimal PNG reader for the 1-bit grayscale images we write: returns (width, height,
/// pixels with `true` = black), checking the chunk CRCs on the way through `miniz_oxide`.
fn decode_png(png: &[u8]) -> (u32, u32, Vec<bool>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut pos = 8;
    let (mut width, mut height) = (0, 0);
    let mut idat = Vec::new();
    loop {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &png[pos + 4..pos + 8];
        let data = &png[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(&data[8..13], &[1, 0, 0, 0, 0], "1-bit grayscale");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            other => panic!("unexpected chunk {other:?}"),
        }
        pos += 12 + len;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).unwrap();
    let stride = width.div_ceil(8) as usize + 1;
    assert_eq!(raw.len(), stride * height as usize);
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height as usize {
        let row = &raw[y * stride..(y + 1) * stride];
        assert_eq!(row[0], 0, "filter none");
        for x in 0..width as usize {
            pixels.push(row[1 + x / 8] & (0x80 >> (x % 8)) == 0);
        }
    }
    (width, height, pixels)
}

#[test]
fn qr_data_uri_is_a_256x256_png_of_the_url() {
    let key = new_totp("sallyport.example", "7f0c4d5e-1b2a-4c3d-9e8f-0a1b2c3d4e5f");
    let uri = qr_png_data_uri(&key.url);
    let png = png_from_data_uri(&uri);

    // IHDR is the first chunk: width and height at bytes 16..24.
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 256);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 256);
    assert!(png.len() < 4096, "compressed PNG, got {} bytes", png.len());

    let (width, height, pixels) = decode_png(&png);
    assert_eq!((width, height), (256, 256));
    assert!(!pixels[0] && !pixels[255 * 256 + 255], "corners are quiet zone");

    let mut image = rqrr::PreparedImage::prepare_from_bitmap(256, 256, |x, y| pixels[y * 256 + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, key.url);
}

#[test]
fn qr_long_payload() {
    let long = "x".repeat(1500);
    let (w, h, _) = decode_png(&qr_png(&long).unwrap());
    assert_eq!((w, h), (256, 256));
    // Far beyond QR capacity: an error, and a blank image from the infallible helper.
    let too_long = "x".repeat(5000);
    assert!(try_qr_png_data_uri(&too_long).is_err());
    let (w, h, pixels) = decode_png(&png_from_data_uri(&qr_png_data_uri(&too_long)));
    assert_eq!((w, h), (256, 256));
    assert!(pixels.iter().all(|black| !black));
}

// ---------------------------------------------------------------- lookup secrets

#[test]
fn generated_codes_shape() {
    let codes = generate_lookup_codes();
    assert_eq!(codes.len(), 12);
    for code in &codes {
        assert_eq!(code.len(), 8);
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{code}"
        );
    }
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 12);

    // Every character of the alphabet shows up over enough draws (uniform sampling).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        for code in generate_lookup_codes() {
            seen.extend(code.chars());
        }
    }
    assert_eq!(seen.len(), 36);
}

#[test]
fn hashed_config_valid_then_used_then_wrong() {
    let key = "current-secret".to_owned();
    let codes = generate_lookup_codes();
    let config = lookup_credential_config(&codes, &key);

    let entries = config["recovery_codes"].as_array().unwrap();
    assert_eq!(entries.len(), 12);
    assert_eq!(config["hashed"], json!(true));
    for (entry, code) in entries.iter().zip(&codes) {
        let hash = entry["code_hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(code.as_str()));
        assert!(entry.get("code").is_none());
        assert_eq!(entry["used_at"], json!(null));
    }
    assert!(!config.to_string().contains(&codes[0]));
    assert_eq!(remaining_lookup_codes(&config), 12);
    assert!(!can_reveal(&config));
    assert_eq!(reveal_lookup_codes(&config), None);

    let now = datetime!(2025-01-02 03:04:05.2 UTC);
    let keys = [key.clone()];
    // Normalised input: upper case, dashes, spaces.
    let input = format!(" {}-{} ", codes[3][..4].to_uppercase(), &codes[3][4..]);
    let LookupResult::Valid { updated_config } = verify_lookup_code(&config, &input, &keys, now) else {
        panic!("valid code refused");
    };
    assert_eq!(
        updated_config["recovery_codes"][3]["used_at"],
        json!("2025-01-02T03:04:05Z")
    );
    assert_eq!(updated_config["recovery_codes"][2]["used_at"], json!(null));
    assert_eq!(remaining_lookup_codes(&updated_config), 11);

    assert_eq!(
        verify_lookup_code(&updated_config, &codes[3], &keys, now),
        LookupResult::AlreadyUsed
    );
    assert_eq!(
        verify_lookup_code(&updated_config, "zzzzzzzz", &keys, now),
        LookupResult::Invalid
    );
    assert_eq!(
        verify_lookup_code(&updated_config, "", &keys, now),
        LookupResult::Invalid
    );
    assert_eq!(
        verify_lookup_code(&updated_config, " - ", &keys, now),
        LookupResult::Invalid
    );
    assert_eq!(
        verify_lookup_code(&config, &codes[0], &["other".to_owned()], now),
        LookupResult::Invalid
    );
    assert_eq!(
        verify_lookup_code(&config, &codes[0], &[], now),
        LookupResult::Invalid
    );
    assert_eq!(
        verify_lookup_code(&json!({}), &codes[0], &keys, now),
        LookupResult::Invalid
    );
}

#[test]
fn key_rotation() {
    let codes = generate_lookup_codes();
    let config = lookup_credential_config(&codes, "old-secret");
    let keys = ["new-secret".to_owned(), "old-secret".to_owned()];
    let now = datetime!(2025-01-02 03:04:05 UTC);
    assert!(matches!(
        verify_lookup_code(&config, &codes[0], &keys, now),
        LookupResult::Valid { .. }
    ));
    assert_eq!(
        verify_lookup_code(&config, &codes[0], &keys[..1], now),
        LookupResult::Invalid
    );
}

#[test]
fn kratos_plaintext_config_accepted() {
    // Kratos' format: plaintext codes, used_at null, Go zero time or a timestamp.
    let config = json!({"recovery_codes": [
        {"code": "abcd1234", "used_at": null},
        {"code": "efgh5678", "used_at": "2024-06-01T10:00:00Z"},
        {"code": "ijkl9012", "used_at": "0001-01-01T00:00:00Z"},
        {"code": "mnop3456"}
    ]});
    assert_eq!(remaining_lookup_codes(&config), 3);
    assert!(can_reveal(&config));
    let revealed = reveal_lookup_codes(&config).unwrap();
    assert_eq!(revealed.len(), 4);
    assert_eq!(revealed[1].code, "efgh5678");
    assert!(revealed[1].used);
    assert_eq!(revealed[1].used_at, Some(datetime!(2024-06-01 10:00:00 UTC)));
    assert!(!revealed[2].used);

    let keys = ["secret".to_owned()];
    let now = datetime!(2025-01-02 03:04:05 UTC);
    let LookupResult::Valid { updated_config } = verify_lookup_code(&config, "ABCD-1234", &keys, now) else {
        panic!("plaintext code refused");
    };
    assert_eq!(
        updated_config["recovery_codes"][0],
        json!({"code": "abcd1234", "used_at": "2025-01-02T03:04:05Z"}),
        "format kept"
    );
    assert!(updated_config.get("hashed").is_none());
    assert_eq!(
        verify_lookup_code(&updated_config, "abcd1234", &keys, now),
        LookupResult::AlreadyUsed
    );
    assert_eq!(
        verify_lookup_code(&config, "efgh5678", &keys, now),
        LookupResult::AlreadyUsed
    );
    assert!(matches!(
        verify_lookup_code(&config, "ijkl9012", &[], now),
        LookupResult::Valid { .. }
    ));
    assert_eq!(
        verify_lookup_code(&config, "abcd123", &keys, now),
        LookupResult::Invalid
    );

    // Optional migration to the hashed format keeps the state of every code.
    let hashed = hash_plaintext_lookup_config(&config, "secret").unwrap();
    assert!(!can_reveal(&hashed));
    assert_eq!(remaining_lookup_codes(&hashed), 3);
    assert!(!hashed.to_string().contains("abcd1234"));
    assert!(matches!(
        verify_lookup_code(&hashed, "abcd1234", &keys, now),
        LookupResult::Valid { .. }
    ));
    assert_eq!(
        verify_lookup_code(&hashed, "efgh5678", &keys, now),
        LookupResult::AlreadyUsed
    );
    assert_eq!(hash_plaintext_lookup_config(&hashed, "secret"), None);
}

// ---------------------------------------------------------------- AAL

#[test]
fn second_factor_detection() {
    assert!(is_second_factor(
        "totp",
        &json!({"totp_url": "otpauth://totp/test"})
    ));
    assert!(!is_second_factor("totp", &json!({"totp_url": ""})));
    assert!(!is_second_factor("totp", &json!({})));
    assert!(is_second_factor(
        "lookup_secret",
        &json!({"recovery_codes": [{"code": "a", "used_at": null}]})
    ));
    assert!(!is_second_factor("lookup_secret", &json!({"recovery_codes": []})));
    assert!(is_second_factor(
        "webauthn",
        &json!({"credentials": [{"id": "x", "is_passwordless": false}]})
    ));
    assert!(is_second_factor(
        "webauthn",
        &json!({"credentials": [{"id": "x"}]})
    ));
    assert!(!is_second_factor(
        "webauthn",
        &json!({"credentials": [{"id": "x", "is_passwordless": true}]})
    ));
    assert!(!is_second_factor("webauthn", &json!({"credentials": []})));
    assert!(!is_second_factor("password", &json!({"hashed_password": "x"})));
    assert!(!is_second_factor(
        "passkey",
        &json!({"credentials": [{"id": "x"}]})
    ));
}
