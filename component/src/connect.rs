//! Unary calls as connect-go serves them: the protocol and codec from
//! `Content-Type` (Connect: `application/proto` or `application/json`; gRPC
//! and gRPC-Web: `application/grpc[-web][+proto|+json]`, framed by
//! [`crate::grpc`]), optional gzip both ways. Connect errors are
//! `{"code","message"}` JSON with the mapped HTTP status; gRPC errors are
//! status trailers.

use std::io::{Read, Write};

use kiln_core::ErrorKind;
use serde::{Serialize, de::DeserializeOwned};

use crate::grpc;
use crate::http::{Reply, RequestHead};

/// Largest request body, before and after decompression (Pyroscope's
/// `ingestion_body_limit_mb` default).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

/// The three protocols connect-go serves on every path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Connect,
    Grpc,
    GrpcWeb,
}

/// Every content type kiln accepts, sorted, as connect-go lists them in
/// `Accept-Post`.
const ACCEPT_POST: &str = "application/grpc, application/grpc+json, application/grpc+json; charset=utf-8, \
application/grpc+proto, application/grpc-web, application/grpc-web+json, application/grpc-web+json; charset=utf-8, \
application/grpc-web+proto, application/json, application/json; charset=utf-8, application/proto";

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
            Code::Internal | Code::DataLoss => 500,
            Code::Unavailable => 503,
        }
    }

    /// The numeric gRPC status code.
    pub fn grpc(self) -> u8 {
        match self {
            Code::InvalidArgument => 3,
            Code::ResourceExhausted => 8,
            Code::Unimplemented => 12,
            Code::Unauthenticated => 16,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
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

/// The error body of Pyroscope's legacy HTTP endpoints (`/ingest`,
/// `/pyroscope/*`): the Connect error JSON and a newline, with any status.
pub fn legacy_error(status: u16, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({ "code": code, "message": message });
    Reply::new(status)
        .header("content-type", "application/json")
        .header("x-content-type-options", "nosniff")
        .body(format!("{body}\n"))
}

impl ConnectError {
    pub fn into_legacy_reply(self) -> Reply {
        legacy_error(self.code.http_status(), self.code.as_str(), &self.message)
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
    pub protocol: Protocol,
    pub codec: Codec,
    /// The request's media type, echoed on gRPC replies as connect-go does.
    content_type: String,
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
        let (protocol, codec) = match media.as_str() {
            "application/proto" => (Protocol::Connect, Codec::Proto),
            "application/json" => (Protocol::Connect, Codec::Json),
            "application/grpc" | "application/grpc+proto" => (Protocol::Grpc, Codec::Proto),
            "application/grpc+json" => (Protocol::Grpc, Codec::Json),
            "application/grpc-web" | "application/grpc-web+proto" => (Protocol::GrpcWeb, Codec::Proto),
            "application/grpc-web+json" => (Protocol::GrpcWeb, Codec::Json),
            _ => return Err(Reply::new(415).header("accept-post", ACCEPT_POST)),
        };
        let mut call = Self { protocol, codec, content_type: media.clone(), gzip_request: false, gzip_response: false };
        let (encoding, accept_encoding) = match protocol {
            Protocol::Connect => {
                if let Some(v) = head.header("connect-protocol-version").filter(|v| v.trim() != "1") {
                    return Err(
                        call.error(ConnectError::invalid(format!("connect-protocol-version must be \"1\": got {v:?}")))
                    );
                }
                ("content-encoding", "accept-encoding")
            }
            Protocol::Grpc | Protocol::GrpcWeb => ("grpc-encoding", "grpc-accept-encoding"),
        };
        call.gzip_request = match head.header(encoding).map(str::trim) {
            None | Some("") | Some("identity") => false,
            Some(e) if e.eq_ignore_ascii_case("gzip") => true,
            Some(other) => {
                return Err(call.error(ConnectError::new(
                    Code::Unimplemented,
                    format!("unknown compression {other:?}: supported encodings are gzip"),
                )));
            }
        };
        let accepts_gzip = head
            .header(accept_encoding)
            .is_some_and(|v| v.split([',', ' ']).any(|e| e.trim().eq_ignore_ascii_case("gzip")));
        call.gzip_response = call.gzip_request || accepts_gzip;
        Ok(call)
    }

    /// Decodes the request message.
    pub fn decode<M: prost::Message + DeserializeOwned + Default>(&self, body: &[u8]) -> Result<M, ConnectError> {
        // gRPC says per message whether it is compressed; Connect per body.
        let (body, compressed) = match self.protocol {
            Protocol::Connect => (body, self.gzip_request),
            Protocol::Grpc | Protocol::GrpcWeb => {
                let (message, compressed) = grpc::unframe(body)?;
                if compressed && !self.gzip_request {
                    return Err(ConnectError::new(
                        Code::Internal,
                        "protocol error: received compressed message without grpc-encoding header",
                    ));
                }
                (message, compressed)
            }
        };
        let inflated;
        let body = if compressed {
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

    /// Encodes a response message in the request's protocol and codec.
    pub fn reply<M: prost::Message + Serialize>(&self, message: &M) -> Reply {
        let body = match self.codec {
            Codec::Proto => message.encode_to_vec(),
            Codec::Json => serde_json::to_vec(message).expect("messages serialize"),
        };
        let body = if self.gzip_response { gzip(&body) } else { body };
        match self.protocol {
            Protocol::Connect => {
                let content_type = if self.codec == Codec::Proto { "application/proto" } else { "application/json" };
                let reply = Reply::new(200).header("content-type", content_type);
                if self.gzip_response { reply.header("content-encoding", "gzip").body(body) } else { reply.body(body) }
            }
            Protocol::Grpc => grpc::grpc_reply(self.grpc_head(), grpc::frame(&body, self.gzip_response)),
            Protocol::GrpcWeb => grpc::web_reply(self.grpc_head(), grpc::frame(&body, self.gzip_response)),
        }
    }

    /// The reply of a failed call, in the request's protocol.
    pub fn error(&self, error: ConnectError) -> Reply {
        match self.protocol {
            Protocol::Connect => error.into_reply(),
            Protocol::Grpc => grpc::grpc_error(self.grpc_head(), &error),
            Protocol::GrpcWeb => grpc::web_error(self.grpc_head(), &error),
        }
    }

    /// Status and headers of every gRPC reply: 200, the request's content
    /// type, the compression used and accepted.
    fn grpc_head(&self) -> Reply {
        let reply = Reply::new(200).header("content-type", &self.content_type).header("grpc-accept-encoding", "gzip");
        if self.gzip_response { reply.header("grpc-encoding", "gzip") } else { reply }
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
