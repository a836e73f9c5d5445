//! The primitive encodings of a JFR chunk (as jfr-parser decodes them):
//! LEB128 varints, raw bytes, tagged strings, big-endian header fields. Every
//! read is bounds-checked against the slice the reader was given, so a record
//! can never read past its own end.

use alloc::borrow::Cow;
use alloc::string::String;

use super::malformed;
use crate::error::Result;

#[derive(Clone)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A reader over `buf` starting at `pos` (which may be past the end: the
    /// first read then fails).
    pub(super) fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(eof)?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(eof)?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    pub(super) fn be_u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn be_u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        Ok(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// A LEB128 varint of up to 9 bytes; the 9th contributes all 8 bits.
    /// `int`, `short`, `char` and `float` use the same encoding (≤ 5 bytes).
    #[inline]
    pub(super) fn varlong(&mut self) -> Result<u64> {
        let first = *self.buf.get(self.pos).ok_or_else(eof)?;
        if first < 0x80 {
            self.pos += 1;
            return Ok(first as u64);
        }
        self.varlong_slow()
    }

    fn varlong_slow(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..56).step_by(7) {
            let b = self.u8()?;
            value |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Ok(value | (self.u8()? as u64) << 56)
    }

    /// A count or length, which must fit in the bytes left (each element of
    /// a non-empty type takes at least one byte): a claimed huge count fails
    /// here instead of driving a huge loop or allocation.
    pub(super) fn count(&mut self) -> Result<usize> {
        let n = self.varlong()?;
        if n > self.remaining() as u64 {
            return Err(malformed(alloc::format!("length {n} exceeds the {} bytes left", self.remaining())));
        }
        Ok(n as usize)
    }

    /// A string field: `None` for null, text otherwise (borrowed when the
    /// bytes are valid UTF-8 or ASCII Latin-1).
    pub(super) fn string(&mut self) -> Result<Option<Cow<'a, str>>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(Cow::Borrowed(""))),
            2 => Err(string_pool_ref()),
            3 => {
                let n = self.count()?;
                Ok(Some(String::from_utf8_lossy(self.bytes(n)?)))
            }
            4 => {
                let n = self.count()?;
                let mut units = alloc::vec::Vec::with_capacity(n);
                for _ in 0..n {
                    units.push(self.varlong()? as u16);
                }
                Ok(Some(Cow::Owned(char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')).collect())))
            }
            5 => {
                let n = self.count()?;
                let b = self.bytes(n)?;
                if b.is_ascii() {
                    Ok(Some(Cow::Borrowed(core::str::from_utf8(b).unwrap_or_default())))
                } else {
                    Ok(Some(Cow::Owned(b.iter().map(|&c| c as char).collect())))
                }
            }
            tag => Err(malformed(alloc::format!("unknown string encoding {tag}"))),
        }
    }

    pub(super) fn skip_string(&mut self) -> Result<()> {
        match self.u8()? {
            0 | 1 => Ok(()),
            2 => Err(string_pool_ref()),
            3 | 5 => {
                let n = self.count()?;
                self.bytes(n).map(drop)
            }
            4 => {
                let n = self.count()?;
                (0..n).try_for_each(|_| self.varlong().map(drop))
            }
            tag => Err(malformed(alloc::format!("unknown string encoding {tag}"))),
        }
    }
}

fn eof() -> crate::Error {
    malformed("unexpected end of data")
}

fn string_pool_ref() -> crate::Error {
    malformed("string constant pool references are not supported")
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn varints() {
        let mut r = Reader::new(&[0x05, 0x96, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(r.varlong().unwrap(), 5);
        assert_eq!(r.varlong().unwrap(), 150);
        assert_eq!(r.varlong().unwrap(), u32::MAX as u64);
        assert!(r.varlong().is_err());
        // Nine bytes: the last one carries 8 full bits.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.varlong().unwrap(), u64::MAX);
    }

    #[test]
    fn strings() {
        let data = [0, 1, 3, 2, b'h', b'i', 5, 2, 0xe9, b'a', 4, 2, 0x68, 0xe9, 0x01];
        let mut r = Reader::new(&data);
        assert_eq!(r.string().unwrap(), None);
        assert_eq!(r.string().unwrap().as_deref(), Some(""));
        assert_eq!(r.string().unwrap().as_deref(), Some("hi"));
        assert_eq!(r.string().unwrap().as_deref(), Some("éa"));
        assert_eq!(r.string().unwrap().as_deref(), Some("hé"));
        assert_eq!(r.remaining(), 0);
        for bad in [&[2u8, 1][..], &[3, 200, 1], &[9]] {
            assert!(Reader::new(bad).string().is_err());
            assert!(Reader::new(bad).skip_string().is_err());
        }
    }

    #[test]
    fn counts_are_bounded_by_the_data() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0]);
        let err = r.count().unwrap_err().to_string();
        assert!(err.contains("exceeds"), "{err}");
    }
}
