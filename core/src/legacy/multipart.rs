//! `multipart/form-data` bodies as SDKs send them (Go, .NET, Python, the
//! Java agent): parts with `Content-Disposition` names and file names,
//! optional part `Content-Type`/`Content-Length`, CRLF or bare LF lines.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Limits that keep a hostile body from costing more than its size.
const MAX_PARTS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// One part of the form.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    /// Present on file parts, the only ones Pyroscope reads.
    pub filename: Option<String>,
    pub body: &'a [u8],
}

/// Is this `Content-Type` a multipart form?
pub fn is_multipart(content_type: &str) -> bool {
    content_type.to_ascii_lowercase().contains("multipart/form-data")
}

/// The parts of `body`, with the boundary from `content_type`.
pub fn parse<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, String> {
    let boundary = param(content_type, "boundary").ok_or("multipart: boundary is missing")?;
    if boundary.is_empty() || boundary.len() > 200 {
        return Err("multipart: invalid boundary".into());
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter may follow a preamble.
    let mut pos = find(body, delimiter, 0).ok_or("multipart: NextPart: EOF")?;
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the line break after the delimiter.
        let line_end = rest.iter().position(|&b| b == b'\n').ok_or("multipart: NextPart: EOF")?;
        pos += line_end + 1;
        if parts.len() == MAX_PARTS {
            return Err(format!("multipart: more than {MAX_PARTS} parts"));
        }
        let (headers, body_start) = headers(body, pos)?;
        // The part ends at the line break before the next delimiter.
        let next = find(body, delimiter, body_start).ok_or("multipart: NextPart: EOF")?;
        let mut end = next;
        if end > body_start && body[end - 1] == b'\n' {
            end -= 1;
            if end > body_start && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        let disposition = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-disposition"));
        let disposition = disposition.map(|(_, v)| v.as_str()).unwrap_or_default();
        parts.push(Part {
            name: param(disposition, "name").unwrap_or_default(),
            filename: param(disposition, "filename"),
            body: &body[body_start..end],
        });
        pos = next;
    }
}

/// The part's header lines, and where its body starts.
fn headers(body: &[u8], mut pos: usize) -> Result<(Vec<(String, String)>, usize), String> {
    let start = pos;
    let mut headers = Vec::new();
    loop {
        let line_end = body[pos..].iter().position(|&b| b == b'\n').ok_or("multipart: NextPart: EOF")?;
        let line = &body[pos..pos + line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += line_end + 1;
        if pos - start > MAX_HEADER_BYTES {
            return Err("multipart: part header too large".into());
        }
        if line.is_empty() {
            return Ok((headers, pos));
        }
        let line = String::from_utf8_lossy(line);
        let (k, v) = line.split_once(':').ok_or_else(|| format!("multipart: malformed part header {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
}

/// A `; key=value` or `; key="value"` parameter of a header value.
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        Some(match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => v.to_string(),
        })
    })
}

/// The next occurrence of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= haystack.len() {
        let offset = haystack[i..haystack.len() - needle.len() + 1].iter().position(|&b| b == first)?;
        i += offset;
        if &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn parts_as_go_and_java_send_them() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n\x1f\x8b\r\n--XyZ\r\ncontent-disposition: form-data; name=\"jfr\"; filename=\"jfr\"\r\nContent-Length: 3\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=plain\r\n\r\nv\r\n--XyZ--\r\n";
        let parts = parse(CT, body).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "profile");
        assert_eq!(parts[0].filename.as_deref(), Some("profile.pprof"));
        assert_eq!(parts[0].body, b"\x1f\x8b");
        assert_eq!((parts[1].name.as_str(), parts[1].body), ("jfr", &b"abc"[..]));
        assert_eq!((parts[2].name.as_str(), parts[2].filename.as_deref()), ("plain", None));
        // Bare LF line breaks and a quoted boundary.
        let lf = b"--b c\nContent-Disposition: form-data; name=\"x\"; filename=\"f\"\n\n12\n--b c--";
        let parts = parse("multipart/form-data; boundary=\"b c\"", lf).unwrap();
        assert_eq!(parts[0].body, b"12");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse("multipart/form-data", b"").is_err());
        assert!(parse(CT, b"no delimiter").is_err());
        assert!(parse(CT, b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated").is_err());
        assert!(parse(CT, b"--XyZ\r\nbroken header\r\n\r\nx\r\n--XyZ--").is_err());
        let many: String = (0..=MAX_PARTS).map(|_| "--XyZ\r\n\r\nx\r\n").collect::<String>() + "--XyZ--";
        assert!(parse(CT, many.as_bytes()).unwrap_err().contains("parts"));
        assert!(is_multipart("Multipart/Form-Data; boundary=1"));
        assert!(!is_multipart("application/x-www-form-urlencoded"));
    }
}
