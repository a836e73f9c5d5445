//! gRPC and gRPC-Web framing for unary calls, as connect-go serves them on
//! the same paths as Connect (spec `wire.md` §2.5). Every message travels in
//! an envelope: one flag byte (bit 0 = compressed), a 4-byte big-endian
//! length, the payload. The status goes in trailers (`grpc-status`,
//! `grpc-message`): HTTP trailers for gRPC; for gRPC-Web a last envelope
//! flagged `0x80` whose payload is `name: value\r\n` lines, or response
//! headers when an error comes before any message ("trailers-only").

use crate::connect::{Code, ConnectError};
use crate::http::Reply;

/// Flag bit of a compressed message.
const COMPRESSED: u8 = 0x01;
/// Flag bit of gRPC-Web's trailer envelope.
const TRAILERS: u8 = 0x80;
const PREFIX: usize = 5;

/// The single message of a unary request: its payload and whether it is
/// compressed.
pub fn unframe(body: &[u8]) -> Result<(&[u8], bool), ConnectError> {
    if body.is_empty() {
        return Err(ConnectError::new(Code::Unimplemented, "unary request has zero messages"));
    }
    let (flags, payload, rest) = envelope(body)?;
    if flags & !COMPRESSED != 0 {
        return Err(ConnectError::new(Code::Internal, format!("protocol error: invalid envelope flags {flags}")));
    }
    if !rest.is_empty() {
        return Err(ConnectError::new(Code::Unimplemented, "unary request has multiple messages"));
    }
    Ok((payload, flags & COMPRESSED != 0))
}

/// Splits the first envelope off `bytes`: (flags, payload, rest).
fn envelope(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), ConnectError> {
    if bytes.len() < PREFIX {
        return Err(ConnectError::invalid("protocol error: incomplete envelope: unexpected EOF"));
    }
    let size = u32::from_be_bytes(bytes[1..PREFIX].try_into().expect("4 bytes")) as usize;
    let payload = &bytes[PREFIX..];
    if payload.len() < size {
        return Err(ConnectError::invalid(format!(
            "protocol error: promised {size} bytes in enveloped message, got {} bytes",
            payload.len()
        )));
    }
    Ok((bytes[0], &payload[..size], &payload[size..]))
}

/// One message in its envelope.
pub fn frame(payload: &[u8], compressed: bool) -> Vec<u8> {
    envelope_of(if compressed { COMPRESSED } else { 0 }, payload)
}

fn envelope_of(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX + payload.len());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The gRPC status trailers of an outcome.
fn status(error: Option<&ConnectError>) -> Vec<(&'static str, String)> {
    match error {
        None => vec![("grpc-status", "0".into())],
        Some(e) => vec![("grpc-status", e.code.grpc().to_string()), ("grpc-message", percent_encode(&e.message))],
    }
}

/// A successful gRPC reply: the message, then the status as HTTP trailers.
pub fn grpc_reply(reply: Reply, message: Vec<u8>) -> Reply {
    status(None).into_iter().fold(reply.body(message), |r, (k, v)| r.trailer(k, &v))
}

/// A failed gRPC call: HTTP 200, no message, the status as HTTP trailers
/// (connect-go sends trailers even when no message precedes them).
pub fn grpc_error(reply: Reply, error: &ConnectError) -> Reply {
    status(Some(error)).into_iter().fold(reply, |r, (k, v)| r.trailer(k, &v))
}

/// A successful gRPC-Web reply: the message envelope, then the trailer
/// envelope.
pub fn web_reply(reply: Reply, mut message: Vec<u8>) -> Reply {
    let trailers: String = status(None).iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    message.extend(envelope_of(TRAILERS, trailers.as_bytes()));
    reply.body(message)
}

/// A failed gRPC-Web call before any message: "trailers-only", the status in
/// the response headers and an empty body.
pub fn web_error(reply: Reply, error: &ConnectError) -> Reply {
    status(Some(error)).into_iter().fold(reply, |r, (k, v)| r.header(k, &v))
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside printable ASCII,
/// and `%`, become `%XX`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if !(b' '..=b'~').contains(&b) || b == b'%' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_bad_ones_are_refused() {
        let framed = frame(b"abc", false);
        assert_eq!(framed, [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(unframe(&framed).unwrap(), (&b"abc"[..], false));
        assert_eq!(unframe(&frame(b"", true)).unwrap(), (&b""[..], true));
        let code = |body: &[u8]| unframe(body).unwrap_err().code;
        assert_eq!(code(b""), Code::Unimplemented);
        assert_eq!(code(&[0, 0, 0]), Code::InvalidArgument);
        assert_eq!(code(&[0, 0, 0, 0, 9, 1]), Code::InvalidArgument);
        assert_eq!(code(&[TRAILERS, 0, 0, 0, 0]), Code::Internal);
        let two = [frame(b"a", false), frame(b"b", false)].concat();
        assert_eq!(code(&two), Code::Unimplemented);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("max 100% of \"x\"\n é"), "max 100%25 of \"x\"%0A %C3%A9");
    }
}
