//! gzip detection and bounded decompression (RFC 1952), `no_std`.
//!
//! Clients send gzip without saying so (Go's `profile` part, Node raw bodies,
//! Java multipart parts), so callers sniff the magic bytes. Every inflate has
//! an output limit: a small bomb must not become unbounded memory.

use alloc::vec::Vec;

const MAGIC: [u8; 2] = [0x1f, 0x8b];
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GzipError {
    #[error("gzip: invalid header")]
    Header,
    #[error("gzip: unexpected EOF")]
    Truncated,
    #[error("gzip: invalid compressed data")]
    Corrupt,
    #[error("decompressed size exceeds maximum allowed size of {0} bytes")]
    TooLarge(usize),
    #[error("gzip: out of memory for the decompressed data")]
    OutOfMemory,
}

pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Inflates a gzip stream (all members) into at most `limit` bytes.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    decompress_into(data, &mut out, limit)?;
    Ok(out)
}

/// [`decompress`] appending to `out`. Memory is reserved fallibly
/// ([`GzipError::OutOfMemory`] rather than an abort), and up front for the
/// size the last member's trailer announces, so a large single-member stream
/// is inflated into one allocation of its final size.
pub fn decompress_into(data: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), GzipError> {
    if let Some(trailer) = data.len().checked_sub(4).and_then(|at| data.get(at..)) {
        let announced = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
        // One byte more lets the inflater see the end of the stream without growing.
        out.try_reserve_exact(announced.min(limit) + 1).map_err(|_| GzipError::OutOfMemory)?;
    }
    let mut rest = data;
    while !rest.is_empty() {
        let body = skip_header(rest)?;
        let (consumed, produced) = inflate_member(body, out, limit)?;
        let trailer = body.get(consumed..consumed + 8).ok_or(GzipError::Truncated)?;
        let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if isize != produced as u32 {
            return Err(GzipError::Corrupt);
        }
        rest = &body[consumed + 8..];
        // Trailing zero padding after the last member is common (tar-style
        // writers); anything else must be another member.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
    }
    Ok(())
}

/// Compresses `data` into one gzip member (RFC 1952), for downloads.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, 6);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    // No name, no time, OS "unknown".
    out.extend_from_slice(&[MAGIC[0], MAGIC[1], 8, 0, 0, 0, 0, 0, 0, 0xff]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE, reflected), the checksum of a gzip trailer.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

fn skip_header(data: &[u8]) -> Result<&[u8], GzipError> {
    if data.len() < 10 {
        return Err(if data.starts_with(&MAGIC) { GzipError::Truncated } else { GzipError::Header });
    }
    if data[..2] != MAGIC || data[2] != 8 {
        return Err(GzipError::Header);
    }
    let flags = data[3];
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let len = data.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        pos += 2 + u16::from_le_bytes([len[0], len[1]]) as usize;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = data.get(pos..).ok_or(GzipError::Truncated)?;
            pos += end.iter().position(|&b| b == 0).ok_or(GzipError::Truncated)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    data.get(pos..).ok_or(GzipError::Truncated)
}

/// Inflates one raw DEFLATE stream, appending to `out`; returns the input
/// bytes consumed and the bytes produced.
fn inflate_member(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(usize, usize), GzipError> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

    let start = out.len();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = start.saturating_add(limit).saturating_add(1);
    let mut state = DecompressorOxide::new();
    let (mut in_pos, mut out_pos) = (0, start);
    loop {
        if out_pos == out.len() {
            if out.len() == cap {
                return Err(GzipError::TooLarge(limit));
            }
            // Space already reserved is used before anything is added.
            let want = if out.capacity() > out.len() {
                out.capacity()
            } else {
                (out.len() - start).max(input.len() * 3).max(32 * 1024) + out.len()
            };
            let want = want.min(cap);
            out.try_reserve_exact(want - out.len()).map_err(|_| GzipError::OutOfMemory)?;
            out.resize(want, 0);
        }
        let more_input = if in_pos < input.len() { inflate_flags::TINFL_FLAG_HAS_MORE_INPUT } else { 0 };
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | more_input;
        let (status, read, written) = decompress(&mut state, &input[in_pos..], out, out_pos, flags);
        in_pos += read;
        out_pos += written;
        match status {
            TINFLStatus::Done => {
                out.truncate(out_pos);
                if out_pos - start > limit {
                    return Err(GzipError::TooLarge(limit));
                }
                return Ok((in_pos, out_pos - start));
            }
            TINFLStatus::HasMoreOutput => {}
            TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                return Err(GzipError::Truncated);
            }
            _ => return Err(GzipError::Corrupt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf 'hello hello hello\n' | gzip -n | xxd -i`
    const HELLO: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40,
        0x90, 0x5c, 0x00, 0x3b, 0x7c, 0x8a, 0xdf, 0x12, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn roundtrip() {
        assert!(is_gzip(HELLO));
        assert_eq!(decompress(HELLO, 1 << 20).unwrap(), b"hello hello hello\n");
    }

    #[test]
    fn compress_roundtrips_with_a_valid_trailer() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let gz = compress(&data);
        assert!(is_gzip(&gz) && gz.len() < data.len() / 10);
        assert_eq!(decompress(&gz, data.len()).unwrap(), data);
        assert_eq!(gz[gz.len() - 8..gz.len() - 4], crc32(&data).to_le_bytes());
    }

    #[test]
    fn concatenated_members() {
        let mut two = HELLO.to_vec();
        two.extend_from_slice(HELLO);
        assert_eq!(decompress(&two, 1 << 20).unwrap().len(), 36);
    }

    #[test]
    fn truncated_and_limit() {
        for cut in [3, 12, HELLO.len() - 4] {
            assert!(decompress(&HELLO[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        assert_eq!(decompress(HELLO, 5), Err(GzipError::TooLarge(5)));
        assert_eq!(decompress(b"plain", 10), Err(GzipError::Header));
    }
}
