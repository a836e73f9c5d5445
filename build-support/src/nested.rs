//! A cargo build of one workspace package for a wasm target, run from a
//! build script (or a tool) while an outer cargo may be running.
//!
//! The nested cargo gets its own target dir: sharing the outer one would wait
//! forever on the build-directory lock the outer cargo holds.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables the outer cargo sets (or a user sets for the host build) that
/// must not reach the nested wasm build: host rustflags, target overrides,
/// lint wrappers, and the per-build-script metadata.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];
const LEAKY_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];

/// Builds `package` in release mode for `target` into `target_dir` and
/// returns the path of its `artifact` (e.g. `kiln_web.wasm`). `envs` reach
/// the nested build's own build scripts.
pub fn build(
    root: &Path,
    package: &str,
    target: &str,
    target_dir: &Path,
    artifact: &str,
    envs: &[(&str, &Path)],
) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    ensure_target(&rustc, root, target);

    let mut command = Command::new(&cargo);
    command
        .current_dir(root)
        .args(["build", "--release", "-p", package, "--target", target])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    remove_leaky_env(&mut command);
    command.envs(envs.iter().copied());
    let status = command.status().unwrap_or_else(|e| panic!("running {}: {e}", Path::new(&cargo).display()));
    assert!(status.success(), "building {package} for {target} failed");

    let path = target_dir.join(target).join("release").join(artifact);
    assert!(path.exists(), "{} was not produced", path.display());
    path
}

/// Keeps the variables of the running (outer) cargo build out of `command`,
/// a nested cargo build for another target.
pub fn remove_leaky_env(command: &mut Command) {
    for (key, _) in env::vars_os() {
        if is_leaky(&key) {
            command.env_remove(key);
        }
    }
}

fn is_leaky(key: &OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    LEAKY_VARS.contains(&key) || LEAKY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The outer build's target dir, seen from a build script's `OUT_DIR`: the
/// nearest ancestor that cargo tagged with `CACHEDIR.TAG` (`<target>/
/// [<triple>/]<profile>/build/<pkg>-<hash>/out`), shared by all profiles so a
/// nested build runs once.
pub fn outer_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .or_else(|| env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| out_dir.join("../../../..").to_path_buf())
}

/// Installs `target` through rustup when the toolchain lacks it
/// (rust-toolchain.toml lists it, but older rustups ignore `targets`).
fn ensure_target(rustc: &OsStr, root: &Path, target: &str) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let installed = sysroot.as_deref().is_some_and(|s| s.join("lib/rustlib").join(target).is_dir());
    if installed {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.current_dir(root).args(["target", "add", target]);
    // The sysroot's directory name is the toolchain cargo is building with.
    if let Some(toolchain) = sysroot.as_deref().and_then(Path::file_name) {
        rustup.arg("--toolchain").arg(toolchain);
    }
    let status = rustup.status().unwrap_or_else(|e| panic!("{target} is missing and rustup failed to run: {e}"));
    assert!(status.success(), "rustup target add {target} failed");
}
