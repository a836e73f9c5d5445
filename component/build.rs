//! Builds the web UI's site (kiln-web as wasm + glue + web/ui) and generates
//! `ui_assets.rs`: one `Asset` per file, embedded with `include_bytes!`, with
//! its content type, an ETag of its bytes and a gzip variant when that saves
//! space.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use kiln_build::{nested, site};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("component lives in the workspace root").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    for input in site::INPUTS {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }

    println!("cargo:rerun-if-env-changed={}", site::TARGET_DIR_VAR);
    let target_dir = env::var_os(site::TARGET_DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| nested::outer_target_dir(&out_dir).join("web-build"));
    let site_dir = out_dir.join("site");
    let files = site::build(&root, &target_dir, &site_dir).unwrap_or_else(|e| panic!("building the web UI: {e}"));

    let mut table = String::from("&[\n");
    for file in &files {
        let bytes = fs::read(&file.file).unwrap_or_else(|e| panic!("reading {}: {e}", file.file.display()));
        let gzip = gzip_variant(&bytes, &file.file);
        writeln!(
            table,
            "    Asset {{ path: {:?}, content_type: {:?}, etag: {:?}, body: include_bytes!({:?}), gzip: {} }},",
            format!("/{}", file.path),
            site::content_type(&file.path),
            format!("\"{:016x}\"", hash(&bytes)),
            file.file.display().to_string(),
            gzip.map_or("None".into(), |gz| format!("Some(include_bytes!({:?}))", gz.display().to_string())),
        )
        .expect("writing to a String");
    }
    table.push(']');
    fs::write(out_dir.join("ui_assets.rs"), table).expect("writing ui_assets.rs");
}

/// Writes `<file>.gz` and returns its path when it is at most 90% of `bytes`.
fn gzip_variant(bytes: &[u8], file: &Path) -> Option<PathBuf> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("gzip into memory");
    let gz = encoder.finish().expect("gzip into memory");
    if gz.len() * 10 > bytes.len() * 9 {
        return None;
    }
    let mut path = file.as_os_str().to_owned();
    path.push(".gz");
    let path = PathBuf::from(path);
    fs::write(&path, gz).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    Some(path)
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}
