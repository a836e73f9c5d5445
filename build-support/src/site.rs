//! The web UI as a static site: the files of `web/ui/` as they are, plus
//! `pkg/` with `kiln-web` compiled to wasm and its wasm-bindgen glue
//! (`--target web`: an ES module the page and its worker import).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use wasm_bindgen_cli_support::Bindgen;

use crate::nested;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Set by a build that builds the component nested in its own, so the
/// component's build script puts the web build beside the outer one's and
/// kiln-web compiles once.
pub const TARGET_DIR_VAR: &str = "KILN_WEB_TARGET_DIR";

/// What a site depends on, for `cargo:rerun-if-changed`.
pub const INPUTS: &[&str] = &["web", "core", "proto", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml"];

/// One file of a built site.
pub struct SiteFile {
    /// Its URL path relative to the site's root, `/`-separated (`pkg/kiln_web.js`).
    pub path: String,
    pub file: PathBuf,
}

/// Builds the site into `out` (emptied first) and lists its files, sorted.
/// `target_dir` holds the nested wasm build.
pub fn build(root: &Path, target_dir: &Path, out: &Path) -> io::Result<Vec<SiteFile>> {
    let wasm = nested::build(root, "kiln-web", WASM_TARGET, target_dir, "kiln_web.wasm", &[]);
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    fs::create_dir_all(out)?;
    copy_dir(&root.join("web/ui"), out)?;
    Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .and_then(|b| b.typescript(false).omit_default_module_path(false).generate(out.join("pkg")))
        .map_err(|e| io::Error::other(format!("wasm-bindgen on {}: {e:#}", wasm.display())))?;
    let mut files = Vec::new();
    list(out, out, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The `Content-Type` a file is served with, by extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn list(root: &Path, dir: &Path, files: &mut Vec<SiteFile>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list(root, &path, files)?;
            continue;
        }
        let relative = path.strip_prefix(root).map_err(io::Error::other)?;
        let parts: Vec<_> = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect();
        files.push(SiteFile { path: parts.join("/"), file: path });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("pkg/kiln_web.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("pkg/kiln_web_bg.wasm"), "application/wasm");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
