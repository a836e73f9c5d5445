//! The thin layer over wasi:http: request heads, bounded body reads, replies.

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

/// Method, path, query string and headers of a request, with its body still
/// unread.
pub struct RequestHead {
    pub method: String,
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn of(req: &IncomingRequest) -> Self {
        let method = match req.method() {
            Method::Get => "GET".into(),
            Method::Post => "POST".into(),
            Method::Put => "PUT".into(),
            Method::Delete => "DELETE".into(),
            Method::Patch => "PATCH".into(),
            Method::Head => "HEAD".into(),
            Method::Options => "OPTIONS".into(),
            Method::Connect => "CONNECT".into(),
            Method::Trace => "TRACE".into(),
            Method::Other(m) => m,
        };
        let target = req.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (path, query) = (path.to_string(), query.to_string());
        let headers = req
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
            .collect();
        Self { method, path, query, headers }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads the whole body, failing once it exceeds `limit` bytes.
pub async fn read_body(req: IncomingRequest, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut stream = req.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(format!("{e:?}")))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub enum BodyError {
    TooLarge,
    Read(String),
}

/// A complete response, with HTTP trailers if any (gRPC's status).
pub struct Reply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), trailers: Vec::new() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self, out: ResponseOutparam) {
        let headers = Fields::from_list(&self.headers).unwrap_or_else(|_| Fields::new());
        let response = OutgoingResponse::new(headers);
        // Only fails for codes outside 100..=999, which kiln never produces.
        let _ = response.set_status_code(self.status);
        if self.trailers.is_empty() {
            // The client may have gone away; nothing useful to do then.
            let _ = out.set_with_body(response, self.body).await;
            return;
        }
        // spin-sdk's body sink finishes without trailers, so write the body
        // through wasi:http directly. Blocking writes only hold up this
        // instance, which serves this one request.
        let Ok(body) = response.body() else { return };
        out.set(response);
        if let Ok(stream) = body.write() {
            for chunk in self.body.chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    return;
                }
            }
        }
        let trailers = Fields::from_list(&self.trailers).unwrap_or_else(|_| Fields::new());
        let _ = OutgoingBody::finish(body, Some(trailers));
    }
}
