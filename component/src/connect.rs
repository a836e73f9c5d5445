//! The Connect protocol for unary calls, as connect-go serves it: codec from
//! `Content-Type` (`application/proto` or `application/json`), optional gzip
//! both ways, errors as `{"code","message"}` JSON with the mapped status.

use std::io::{Read, Write};

use kiln_core::ErrorKind;
use serde::{Serialize, de::DeserializeOwned};

use crate::http::{Reply, RequestHead};

/// Largest request body, before and after decompression (Pyroscope's
/// `ingestion_body_limit_mb` default).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

/// A Connect error code with its message.
#[derive(Debug)]
pub struct ConnectError {
    pub code: Code,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    ResourceExhausted,
    Unimplemented,
    Unauthenticated,
    Internal,
    Unavailable,
    DataLoss,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::ResourceExhausted => "resource_exhausted",
            Code::Unimplemented => "unimplemented",
            Code::Unauthenticated => "unauthenticated",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
        }
    }

    /// connect-go's code to HTTP status table.
    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidArgument => 400,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unauthenticated => 401,
            Code::Internal => 500,
            Code::DataLoss => 500,
            Code::Unavailable => 503,
        }
    }
}

impl ConnectError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn into_reply(self) -> Reply {
        let body = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        Reply::new(self.code.http_status()).header("content-type", "application/json").body(body.to_string())
    }
}

/// The single place where core errors become wire errors.
impl From<kiln_core::Error> for ConnectError {
    fn from(e: kiln_core::Error) -> Self {
        let code = match e.kind() {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::ResourceExhausted => Code::ResourceExhausted,
            ErrorKind::Unimplemented => Code::Unimplemented,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::DataLoss => Code::DataLoss,
        };
        Self::new(code, e.to_string())
    }
}

/// A unary call whose headers passed the protocol checks.
pub struct Call {
    pub codec: Codec,
    gzip_request: bool,
    gzip_response: bool,
}

impl Call {
    /// Checks method and headers. An `Err` is the complete reply (405/415
    /// carry no body, as connect-go sends them).
    pub fn accept(head: &RequestHead) -> Result<Self, Reply> {
        if head.method != "POST" {
            return Err(Reply::new(405).header("allow", "POST"));
        }
        let content_type = head.header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let codec = match media.as_str() {
            "application/proto" => Codec::Proto,
            "application/json" => Codec::Json,
            _ => return Err(Reply::new(415).header("accept-post", "application/json, application/proto")),
        };
        if let Some(v) = head.header("connect-protocol-version").filter(|v| v.trim() != "1") {
            return Err(
                ConnectError::invalid(format!("connect-protocol-version must be \"1\": got {v:?}")).into_reply()
            );
        }
        let gzip_request = match head.header("content-encoding").map(str::trim) {
            None | Some("") | Some("identity") => false,
            Some(e) if e.eq_ignore_ascii_case("gzip") => true,
            Some(other) => {
                return Err(ConnectError::new(
                    Code::Unimplemented,
                    format!("unknown compression {other:?}: supported encodings are gzip"),
                )
                .into_reply());
            }
        };
        let accepts_gzip = head
            .header("accept-encoding")
            .is_some_and(|v| v.split([',', ' ']).any(|e| e.trim().eq_ignore_ascii_case("gzip")));
        Ok(Self { codec, gzip_request, gzip_response: gzip_request || accepts_gzip })
    }

    /// Decodes the request message.
    pub fn decode<M: prost::Message + DeserializeOwned + Default>(&self, body: &[u8]) -> Result<M, ConnectError> {
        let inflated;
        let body = if self.gzip_request {
            inflated = gunzip(body)?;
            &inflated[..]
        } else {
            body
        };
        match self.codec {
            Codec::Proto => {
                M::decode(body).map_err(|e| ConnectError::invalid(format!("unmarshal into {}: {e}", type_name::<M>())))
            }
            Codec::Json => {
                if body.is_empty() {
                    return Err(ConnectError::invalid("zero-length payload is not a valid JSON object"));
                }
                serde_json::from_slice(body)
                    .map_err(|e| ConnectError::invalid(format!("unmarshal into {}: {e}", type_name::<M>())))
            }
        }
    }

    /// Encodes a response message in the request's codec.
    pub fn reply<M: prost::Message + Serialize>(&self, message: &M) -> Reply {
        let (content_type, body) = match self.codec {
            Codec::Proto => ("application/proto", message.encode_to_vec()),
            Codec::Json => ("application/json", serde_json::to_vec(message).expect("messages serialize")),
        };
        let reply = Reply::new(200).header("content-type", content_type);
        if self.gzip_response { reply.header("content-encoding", "gzip").body(gzip(&body)) } else { reply.body(body) }
    }
}

fn type_name<M>() -> &'static str {
    std::any::type_name::<M>().rsplit("::").next().unwrap_or("message")
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, ConnectError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ConnectError::invalid(format!("decompress request: {e}")))?;
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(ConnectError::new(
            Code::ResourceExhausted,
            format!("message size is larger than configured max {MAX_MESSAGE_BYTES}"),
        ));
    }
    Ok(out)
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}
