//! The web UI as kiln serves it at `/`: the files of web/ui and the wasm
//! build of kiln-web, with content types, revalidation and gzip.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use kiln_tests::server::Server;

fn ui_file(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/ui").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn index_is_served_at_the_root_and_by_name() {
    let server = Server::start_temp();
    let (status, headers, body) = server.get("/");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(body, ui_file("index.html"));
    let (status, by_name, body_by_name) = server.get("/index.html");
    assert_eq!(status, 200);
    assert_eq!(by_name["etag"], headers["etag"]);
    assert_eq!(body_by_name, body);
}

#[test]
fn wasm_and_glue_have_their_content_types_and_gzip_variants() {
    let server = Server::start_temp();
    let (status, headers, wasm) = server.get("/pkg/kiln_web_bg.wasm");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/wasm");
    assert_eq!(&wasm[..4], b"\0asm", "a wasm module");
    assert!(!headers.contains_key("content-encoding"), "identity unless gzip is accepted");

    let (status, headers, gz) = server.request("GET", "/pkg/kiln_web_bg.wasm", &[("accept-encoding", "gzip, br")]);
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["vary"], "accept-encoding");
    assert!(gz.len() < wasm.len());
    let mut inflated = Vec::new();
    GzDecoder::new(&gz[..]).read_to_end(&mut inflated).expect("valid gzip");
    assert_eq!(inflated, wasm);

    let (status, headers, glue) = server.get("/pkg/kiln_web.js");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert!(String::from_utf8_lossy(&glue).contains("kiln_web_bg.wasm"), "the glue loads the wasm next to it");
}

#[test]
fn revalidation_head_and_unknown_paths() {
    let server = Server::start_temp();
    let (_, headers, _) = server.get("/");
    let etag = headers["etag"].clone();
    let (status, headers, body) = server.request("GET", "/", &[("if-none-match", &etag)]);
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(headers["etag"], etag);
    let (status, _, _) = server.request("GET", "/", &[("if-none-match", "\"stale\"")]);
    assert_eq!(status, 200);

    let (status, headers, body) = server.request("HEAD", "/index.html", &[]);
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");

    assert_eq!(server.request("POST", "/index.html", &[]).0, 404);
    assert_eq!(server.get("/pkg/missing.js").0, 404);
    assert_eq!(server.get("/../Cargo.toml").0, 404);
}
