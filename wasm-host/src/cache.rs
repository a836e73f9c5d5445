//! Compiles the component once and keeps the native artifact in the data
//! dir, so later starts skip Cranelift and map the code straight from disk.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const PREFIX: &str = "component-";
const SUFFIX: &str = ".cwasm";

/// Loads the compiled form of `wasm` from `dir`, compiling and storing it
/// first if no artifact for these exact bytes and engine settings exists.
pub fn load_component(engine: &Engine, wasm: &[u8], dir: &Path) -> anyhow::Result<Component> {
    let path = artifact_path(engine, wasm, dir);
    if path.exists() {
        // SAFETY: only this module writes `component-*.cwasm` files, always
        // from `Engine::precompile_component`, and the name pins both the
        // wasm bytes and the engine's compatibility hash.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(err) => tracing::warn!(path = %path.display(), error = %err,
                "compiled component unusable; recompiling"),
        }
    }

    tracing::info!("compiling the component (once per build)");
    let compiled = engine.precompile_component(wasm).map_err(anyhow::Error::from).context("compiling the component")?;
    // Write to a file of our own, then rename: a crash or a concurrent start
    // sharing the cache dir (another process, or another server in this one)
    // never sees a partial artifact.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
    std::fs::write(&tmp, &compiled).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    remove_stale(dir, &path);

    // SAFETY: the file was just written from `precompile_component` above.
    unsafe { Component::deserialize_file(engine, &path) }
        .map_err(anyhow::Error::from)
        .context("loading the compiled component")
}

fn artifact_path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut compat = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::new().chain_update(wasm).chain_update(compat.finish().to_le_bytes()).finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{PREFIX}{hex}{SUFFIX}"))
}

/// Deletes artifacts of other builds, which this binary would never load. A
/// start racing with this falls back to compiling (see `load_component`).
fn remove_stale(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path != keep && name.starts_with(PREFIX) && name.ends_with(SUFFIX) && std::fs::remove_file(&path).is_ok() {
            tracing::debug!(path = %path.display(), "removed stale compiled component");
        }
    }
}
