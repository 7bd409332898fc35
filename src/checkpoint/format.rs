//! The frame every format version shares: the header (magic, version, reserved word, body
//! length), the section framing (tag, length), and the CRC-32 trailer. A reader checks the
//! frame and the checksum before it looks at the version (`docs/checkpoint-format.md`).

use std::io::{self, Write};

use super::{CheckpointError, Result, corrupt};

/// The first 8 bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"RMSPCKPT";
/// The format version this library writes; it reads every version from 1 to this one.
pub const VERSION: u32 = 1;
/// Bytes before the body: magic (8), version (4), reserved (4), body length (8).
pub const HEADER_LEN: usize = 24;
/// Bytes after the body: the CRC-32 of everything before it.
pub const TRAILER_LEN: usize = 4;
/// The deepest schedule nesting (joins of joins) a checkpoint may hold.
pub const MAX_SCHEDULE_DEPTH: usize = 64;

pub(super) const TAG_CONF: [u8; 4] = *b"CONF";
pub(super) const TAG_LAYT: [u8; 4] = *b"LAYT";
pub(super) const TAG_STAT: [u8; 4] = *b"STAT";
/// Optional, after `STAT`: gradient transforms, weight decay mask, last global norm
/// (`crate::transform`). Written only when one of them is set, so a checkpoint without
/// transforms is byte-identical to before.
pub(super) const TAG_XFRM: [u8; 4] = *b"XFRM";
/// Section tag (4) and section length (8).
pub(super) const SECTION_HEAD: usize = 12;

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib.crc32), slicing by 8.

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let p = t[k - 1][i];
            t[k][i] = (p >> 8) ^ t[0][(p & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// Continue a CRC-32 over `data`; `crc` is the running value (start with 0).
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for b in &mut chunks {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) ^ c;
        let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        c = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// The CRC-32 of `data` (the value Python's `zlib.crc32(data)` returns).
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// A writer that keeps the running CRC-32 of what passed through it.
pub(super) struct CrcWriter<W> {
    pub(super) inner: W,
    pub(super) crc: u32,
}

impl<W: Write> CrcWriter<W> {
    pub(super) fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = crc32_update(self.crc, b);
        self.inner.write_all(b)
    }

    pub(super) fn section(&mut self, tag: [u8; 4], len: u64) -> io::Result<()> {
        self.put(&tag)?;
        self.put(&len.to_le_bytes())
    }
}

/// Write the header of a checkpoint whose body is `body_len` bytes (current version).
pub(super) fn write_header<W: Write>(w: &mut CrcWriter<W>, body_len: u64) -> io::Result<()> {
    w.put(&MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    w.put(&0u32.to_le_bytes())?;
    w.put(&body_len.to_le_bytes())
}

/// The header's version and reserved word, and the body, of a checkpoint whose magic,
/// length and checksum are right.
pub(super) struct Frame<'a> {
    /// The format version (not checked yet).
    pub(super) version: u32,
    /// The reserved header word (its meaning depends on the version).
    pub(super) reserved: u32,
    /// The body, between header and trailer.
    pub(super) body: &'a [u8],
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Check the frame: magic, exact length, CRC-32.
pub(super) fn frame(bytes: &[u8]) -> Result<Frame<'_>> {
    let min = HEADER_LEN + TRAILER_LEN;
    if bytes.len() < min {
        return Err(corrupt(format!(
            "truncated: {} bytes, a checkpoint has at least {min}",
            bytes.len()
        )));
    }
    if bytes[..8] != MAGIC {
        return Err(corrupt("not an rmsprop checkpoint (bad magic bytes)"));
    }
    let version = le_u32(&bytes[8..12]);
    let reserved = le_u32(&bytes[12..16]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let body_len = u64::from_le_bytes(len);
    let expected = usize::try_from(body_len)
        .ok()
        .and_then(|b| b.checked_add(min));
    if expected != Some(bytes.len()) {
        return Err(corrupt(format!(
            "length mismatch: the header announces a {body_len}-byte body, so {} bytes in all, but there are {} (truncated or trailing data)",
            expected.map_or_else(|| "more than addressable".into(), |e| e.to_string()),
            bytes.len()
        )));
    }
    let (framed, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let stored = le_u32(trailer);
    let actual = crc32(framed);
    if stored != actual {
        return Err(corrupt(format!(
            "checksum mismatch: stored CRC-32 {stored:#010x}, computed {actual:#010x}"
        )));
    }
    Ok(Frame {
        version,
        reserved,
        body: &framed[HEADER_LEN..],
    })
}

/// The reader of each format version; the error for versions that do not exist yet.
pub(super) fn check_version(version: u32) -> Result<()> {
    match version {
        0 => Err(corrupt("format version 0 does not exist")),
        v if v <= VERSION => Ok(()),
        found => Err(CheckpointError::Version {
            found,
            supported: VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        // Incremental equals one-shot, for every split (covers the 8-byte path and the tail).
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32_update(crc32(a), b), crc32(&data));
        }
        // Bitwise reference.
        let mut c = !0u32;
        for &b in &data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        assert_eq!(!c, crc32(&data));
    }
}
