//! Pyroscope's legacy HTTP read API: `GET /pyroscope/render`,
//! `/pyroscope/render-diff` and `/pyroscope/label-values`. The core does the
//! work; this maps methods, errors and response compression.

use std::io::Write;

use kiln_core::query::{self, Context, Rendered};
use kiln_core::store::Storage;
use kiln_core::url::QueryString;

use crate::api::{allows_utf8_label_names, now_ms};
use crate::connect::{Code, ConnectError};
use crate::http::{Reply, RequestHead};
use crate::kv::WasiKv;
use crate::{config, tenant};

/// The routes served here.
pub fn is_legacy_query(path: &str) -> bool {
    matches!(path, "/pyroscope/render" | "/pyroscope/render-diff" | "/pyroscope/label-values")
}

/// Bodies at least this long are gzipped for clients that accept it (the
/// threshold of the gzip middleware Pyroscope wraps these handlers in).
const GZIP_MIN_BYTES: usize = 1400;

pub fn handle(head: &RequestHead) -> Reply {
    if head.method != "GET" {
        return Reply::new(405);
    }
    match answer(head) {
        Ok(rendered) => reply(head, rendered),
        Err(e) => error_reply(e),
    }
}

fn answer(head: &RequestHead) -> Result<Rendered, ConnectError> {
    let settings = config::load()?;
    let tenant = tenant::of(head, &settings)?;
    let params = QueryString::parse(&head.query)?;
    let kv = WasiKv::open().map_err(|e| ConnectError::new(Code::Unavailable, e.to_string()))?;
    let cx = Context {
        storage: Storage::new(&kv, &tenant),
        now_ms: now_ms(),
        limits: &settings.query,
        allow_utf8_label_names: allows_utf8_label_names(head),
    };
    Ok(match head.path.as_str() {
        "/pyroscope/render" => query::render(&cx, &params)?,
        "/pyroscope/render-diff" => query::render_diff(&cx, &params)?,
        _ => query::legacy_label_values(&cx, &params)?,
    })
}

fn reply(head: &RequestHead, rendered: Rendered) -> Reply {
    let reply = Reply::new(200).header("content-type", rendered.content_type);
    let accepts_gzip = head.header("accept-encoding").is_some_and(|v| {
        v.split(',').any(|e| e.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("gzip"))
    });
    if accepts_gzip && rendered.body.len() >= GZIP_MIN_BYTES {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        if gz.write_all(rendered.body.as_bytes()).is_ok()
            && let Ok(body) = gz.finish()
        {
            return reply.header("content-encoding", "gzip").header("vary", "Accept-Encoding").body(body);
        }
    }
    reply.body(rendered.body)
}

/// Legacy endpoints answer `{"code","message"}` plus a newline (spec
/// `wire.md` §2.4).
fn error_reply(e: ConnectError) -> Reply {
    let body = serde_json::json!({ "code": e.code.as_str(), "message": e.message });
    Reply::new(e.code.http_status())
        .header("content-type", "application/json")
        .header("x-content-type-options", "nosniff")
        .body(format!("{body}\n"))
}
