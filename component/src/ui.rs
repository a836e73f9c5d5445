//! The web UI (built from web/ by build.rs and embedded): served at `/` with
//! its content types, ETags for revalidation and gzip when the client takes it.

use crate::http::{Reply, RequestHead};

struct Asset {
    /// URL path (`/index.html`, `/pkg/kiln_web.js`).
    path: &'static str,
    content_type: &'static str,
    etag: &'static str,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The reply for a GET or HEAD of one of the UI's files, `None` for any
/// other request.
pub fn serve(head: &RequestHead) -> Option<Reply> {
    let head_only = match head.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    let path = if head.path == "/" { "/index.html" } else { head.path.as_str() };
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    // File names carry no content hash (the same files work from any static
    // host), so browsers revalidate every time; a match costs one 304.
    let not_modified = head.header("if-none-match").is_some_and(|tags| matches_etag(tags, asset.etag));
    let mut reply = Reply::new(if not_modified { 304 } else { 200 })
        .header("cache-control", "no-cache")
        .header("etag", asset.etag)
        .header("x-content-type-options", "nosniff");
    if asset.gzip.is_some() {
        reply = reply.header("vary", "accept-encoding");
    }
    if not_modified {
        return Some(reply);
    }
    reply = reply.header("content-type", asset.content_type);
    let body = match asset.gzip {
        Some(gz) if accepts_gzip(head.header("accept-encoding")) => {
            reply = reply.header("content-encoding", "gzip");
            gz
        }
        _ => asset.body,
    };
    Some(if head_only { reply } else { reply.body(body) })
}

fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == etag || t == "*")
}

fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused =
                parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_encodings() {
        assert!(matches_etag("\"ab\"", "\"ab\""));
        assert!(matches_etag("W/\"ab\", \"cd\"", "\"ab\""));
        assert!(!matches_etag("\"cd\"", "\"ab\""));
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
