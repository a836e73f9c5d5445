//! The shared test data beside the repository (`../shared`), and the small
//! rewrites tests apply to it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kiln_proto::google::v1::Profile;
use prost::Message;

/// `../shared` relative to the workspace, or `KILN_SHARED`. Conformance
/// tests must not pass silently without it, so this panics loudly.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("testdata/MANIFEST.md").is_file(),
        "SHARED TEST DATA MISSING: expected {} (set KILN_SHARED); conformance tests cannot run",
        dir.display()
    );
    dir
}

pub fn testdata(path: &str) -> Vec<u8> {
    let p = shared_dir().join("testdata").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// A captured request's headers (`name: value` lines after the request
/// line), names lower-cased, without the framing headers a client sets anew.
pub fn capture_headers(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .filter(|(k, _)| !matches!(k.as_str(), "content-length" | "host" | "transfer-encoding" | "connection"))
        .collect()
}

/// The request target (`/ingest?...`) of a captured request.
pub fn capture_target(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().next().unwrap_or_default();
    line.split(' ').nth(1).unwrap_or_default().to_string()
}

/// The capture files of a client folder whose names end with `suffix`
/// (e.g. `ingest.body.bin`), sorted.
pub fn captures(client: &str, suffix: &str) -> Vec<PathBuf> {
    let dir = shared_dir().join("testdata/clients").join(client);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no captures in {}", dir.display());
    found
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

pub fn gunzip_if_needed(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    } else {
        bytes.to_vec()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn decode_pprof(bytes: &[u8]) -> Profile {
    Profile::decode(&gunzip_if_needed(bytes)[..]).expect("fixture is a pprof")
}

/// Pyroscope refuses profiles outside its ingestion window; its own tests
/// move fixtures to "now", and so do ours. Returns the profile re-gzipped.
pub fn with_time(bytes: &[u8], time_ns: i64) -> Vec<u8> {
    let mut p = decode_pprof(bytes);
    p.time_nanos = time_ns;
    gzip(&p.encode_to_vec())
}

/// Sum of each sample type's values: `(type, unit, sum)`.
pub fn sample_type_sums(p: &Profile) -> Vec<(String, String, i64)> {
    let s = |i: i64| p.string_table[i as usize].clone();
    p.sample_type
        .iter()
        .enumerate()
        .map(|(i, st)| (s(st.r#type), s(st.unit), p.sample.iter().map(|x| x.value[i]).filter(|v| *v > 0).sum()))
        .collect()
}

/// Moves a pprof (gzipped or not, and kept so) to `time_ns` without
/// re-encoding it: protobuf keeps the last value of a repeated scalar field,
/// so appending field 9 (`time_nanos`) works even for profiles a strict
/// decoder refuses.
pub fn append_time(bytes: &[u8], time_ns: i64) -> Vec<u8> {
    let mut raw = gunzip_if_needed(bytes);
    raw.push(0x48);
    let mut t = time_ns as u64;
    loop {
        let b = (t & 0x7f) as u8;
        t >>= 7;
        raw.push(if t == 0 { b } else { b | 0x80 });
        if t == 0 {
            break;
        }
    }
    if bytes.starts_with(&[0x1f, 0x8b]) { gzip(&raw) } else { raw }
}
