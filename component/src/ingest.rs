//! Pyroscope's legacy `POST /ingest` (and `/pyroscope/ingest`): reads the
//! body and hands query string, content type and bytes to the core.

use kiln_core::legacy::{self, IngestError, Upload};
use kiln_core::store::Storage;
use spin_sdk::http::IncomingRequest;

use crate::api::{new_profile_id, now_ms};
use crate::connect::{ConnectError, MAX_MESSAGE_BYTES, legacy_error};
use crate::http::{BodyError, Reply, RequestHead, read_body};
use crate::kv::WasiKv;
use crate::{config, tenant};

pub async fn handle(req: IncomingRequest, head: &RequestHead) -> Reply {
    if head.method != "POST" {
        return Reply::new(405).header("allow", "POST");
    }
    let body = match read_body(req, MAX_MESSAGE_BYTES).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return legacy_error(413, "invalid_argument", "request body too large: http: request body too large");
        }
        Err(BodyError::Read(e)) => return legacy_error(408, "unknown", &format!("error reading request body: {e}")),
    };
    let (settings, tenant) = match config::load().and_then(|s| tenant::of(head, &s).map(|t| (s, t))) {
        Ok(found) => found,
        Err(e) => return e.into_legacy_reply(),
    };
    let kv = match WasiKv::open() {
        Ok(kv) => kv,
        Err(e) => return legacy_error(503, "unavailable", &e.to_string()),
    };
    let storage = Storage::new(&kv, &tenant);
    let upload =
        Upload { query: &head.query, content_type: head.header("content-type").unwrap_or_default(), body: &body };
    match legacy::ingest(&storage, &upload, now_ms(), &mut new_profile_id, &settings.ingest) {
        Ok(_) => Reply::new(200),
        Err(IngestError::Rejected(e)) => ConnectError::from(e).into_legacy_reply(),
        Err(IngestError::Unprocessable(message)) => legacy_error(422, "unknown", &message),
    }
}
