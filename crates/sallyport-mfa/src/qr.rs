//! QR code rendering of `otpauth://` URLs as 256×256 PNG data URIs (Kratos' `totp_qr` node).

use base64::Engine as _;
use qrcode::{Color, EcLevel, QrCode};

use crate::{MfaError, png};

/// Width and height of the rendered QR image in pixels (as in Kratos).
pub const QR_IMAGE_SIZE: u32 = 256;

/// Light modules around the symbol, as the QR specification asks for.
const QUIET_ZONE_MODULES: usize = 4;

/// Renders `content` as a 256×256 black-on-white PNG QR code (error correction level M
/// like Kratos, falling back to L for very long payloads). The symbol is scaled by an
/// integer factor and centred, with at least a 4-module quiet zone where it fits.
pub fn qr_png(content: &str) -> Result<Vec<u8>, MfaError> {
    let code = QrCode::with_error_correction_level(content, EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(content, EcLevel::L))
        .map_err(|err| MfaError::Qr(err.to_string()))?;
    let modules = code.width();
    let dark: Vec<bool> = code.into_colors().into_iter().map(|c| c == Color::Dark).collect();

    let size = QR_IMAGE_SIZE as usize;
    // The largest QR version has 177 modules, so the scale is at least 1.
    let scale = (size / (modules + 2 * QUIET_ZONE_MODULES)).max(1);
    let symbol = modules * scale;
    let offset = (size - symbol) / 2;

    Ok(png::encode_bilevel(QR_IMAGE_SIZE, QR_IMAGE_SIZE, |x, y| {
        let (x, y) = (x as usize, y as usize);
        if x < offset || y < offset || x >= offset + symbol || y >= offset + symbol {
            return false;
        }
        dark[(y - offset) / scale * modules + (x - offset) / scale]
    }))
}

/// `data:image/png;base64,…` of [`qr_png`].
pub fn try_qr_png_data_uri(content: &str) -> Result<String, MfaError> {
    let png = qr_png(content)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// `data:image/png;base64,…` of a 256×256 QR code showing `url` (the `totp_qr` node's
/// `src`). Should the payload be too long for a QR code (thousands of bytes, impossible
/// for realistic issuers and account names), a blank white image is returned.
pub fn qr_png_data_uri(url: &str) -> String {
    try_qr_png_data_uri(url).unwrap_or_else(|_| {
        let blank = png::encode_bilevel(QR_IMAGE_SIZE, QR_IMAGE_SIZE, |_, _| false);
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(blank)
        )
    })
}
