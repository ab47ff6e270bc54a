//! A minimal PNG encoder for 1-bit grayscale images (enough for QR codes).
//!
//! The image data is compressed with a single fixed-Huffman DEFLATE block and a greedy
//! LZ77 matcher that only looks at the previous byte (runs) and the previous scanline
//! (repeated rows), which is what QR code bitmaps consist of.

/// Encodes a `width` × `height` 1-bit image; `is_black(x, y)` tells the colour of a pixel.
pub(crate) fn encode_bilevel(width: u32, height: u32, is_black: impl Fn(u32, u32) -> bool) -> Vec<u8> {
    let row_bytes = width.div_ceil(8) as usize;
    let stride = row_bytes + 1;
    let mut raw = Vec::with_capacity(stride * height as usize);
    for y in 0..height {
        raw.push(0); // filter type: none
        let mut row = vec![0xffu8; row_bytes]; // 1 = white
        for x in 0..width {
            if is_black(x, y) {
                row[(x / 8) as usize] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&row);
    }

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // bit depth 1, grayscale, deflate, filter 0, no interlace

    let mut png = Vec::new();
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    write_chunk(&mut png, b"IHDR", &ihdr);
    write_chunk(&mut png, b"IDAT", &zlib(&raw, stride));
    write_chunk(&mut png, b"IEND", &[]);
    png
}

fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// zlib stream (RFC 1950) around one fixed-Huffman DEFLATE block (RFC 1951).
fn zlib(data: &[u8], row_distance: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.write(1, 1); // BFINAL
    bits.write(1, 2); // BTYPE = 01, fixed Huffman codes

    const MAX_MATCH: usize = 258;
    let mut pos = 0;
    while pos < data.len() {
        let mut best_len = 0;
        let mut best_dist = 0;
        for dist in [1, row_distance] {
            if dist == 0 || dist > pos || dist > 32768 {
                continue;
            }
            let max = MAX_MATCH.min(data.len() - pos);
            let len = (0..max)
                .take_while(|&i| data[pos + i] == data[pos + i - dist])
                .count();
            if len > best_len {
                best_len = len;
                best_dist = dist;
            }
        }
        if best_len >= 3 {
            write_length(&mut bits, best_len);
            write_distance(&mut bits, best_dist);
            pos += best_len;
        } else {
            write_literal(&mut bits, u16::from(data[pos]));
            pos += 1;
        }
    }
    write_literal(&mut bits, 256); // end of block

    let mut out = vec![0x78, 0x01]; // deflate, 32 KiB window, no dictionary, fastest
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
    227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
    4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

/// Writes a literal/length symbol (0..=285) with the fixed Huffman code.
fn write_literal(bits: &mut BitWriter, symbol: u16) {
    let (code, len) = match symbol {
        0..=143 => (0x30 + symbol, 8),
        144..=255 => (0x190 + (symbol - 144), 9),
        256..=279 => (symbol - 256, 7),
        _ => (0xc0 + (symbol - 280), 8),
    };
    bits.write_huffman(u32::from(code), len);
}

fn write_length(bits: &mut BitWriter, length: usize) {
    let length = length as u16;
    let index = LENGTH_BASE
        .iter()
        .rposition(|&base| base <= length)
        .expect("length >= 3");
    write_literal(bits, 257 + index as u16);
    bits.write(u32::from(length - LENGTH_BASE[index]), LENGTH_EXTRA[index]);
}

fn write_distance(bits: &mut BitWriter, distance: usize) {
    let distance = distance as u16;
    let index = DIST_BASE
        .iter()
        .rposition(|&base| base <= distance)
        .expect("distance >= 1");
    bits.write_huffman(index as u32, 5);
    bits.write(u32::from(distance - DIST_BASE[index]), DIST_EXTRA[index]);
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    buffer: u64,
    count: u8,
}

impl BitWriter {
    /// Writes `len` bits of `value`, least significant bit first.
    fn write(&mut self, value: u32, len: u8) {
        self.buffer |= u64::from(value) << self.count;
        self.count += len;
        while self.count >= 8 {
            self.out.push(self.buffer as u8);
            self.buffer >>= 8;
            self.count -= 8;
        }
    }

    /// Writes a Huffman code, most significant bit first.
    fn write_huffman(&mut self, code: u32, len: u8) {
        let reversed = code.reverse_bits() >> (32 - u32::from(len));
        self.write(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.out.push(self.buffer as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn deflate_round_trip() {
        let mut data = Vec::new();
        for i in 0..5000u32 {
            data.push((i % 7) as u8);
            data.extend_from_slice(&[0xff; 40]);
            data.push((i * 31 % 256) as u8);
        }
        let compressed = zlib(&data, 33);
        let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed).unwrap();
        assert_eq!(inflated, data);
        assert!(compressed.len() < data.len() / 4);
    }
}
