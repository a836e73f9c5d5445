//! Builds the kiln component (`kiln-component`, wasm32-wasip2) from source as
//! part of the host build and hands its path to the crate as
//! `KILN_COMPONENT_WASM`, so `kiln` embeds it with `include_bytes!`.
//!
//! The nested cargo gets its own target dir: sharing the outer one would
//! wait forever on the build-directory lock the outer cargo holds.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const PACKAGE: &str = "kiln-component";
const ARTIFACT: &str = "kiln_component.wasm";

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

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("wasm-host lives in the workspace root").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));

    println!("cargo:rerun-if-changed=build.rs");
    for path in ["component", "core", "proto", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    let cargo = env::var_os("CARGO").expect("set by cargo");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    ensure_wasm_target(&rustc, &root);

    let target_dir = outer_target_dir(&out_dir).join("component-build");
    let mut command = Command::new(&cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "-p", PACKAGE, "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in env::vars_os() {
        if is_leaky(&key) {
            command.env_remove(key);
        }
    }
    let status = command.status().unwrap_or_else(|e| panic!("running {}: {e}", Path::new(&cargo).display()));
    assert!(status.success(), "building {PACKAGE} for {WASM_TARGET} failed");

    let wasm = target_dir.join(WASM_TARGET).join("release").join(ARTIFACT);
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    println!("cargo:rustc-env=KILN_COMPONENT_WASM={}", wasm.display());
}

fn is_leaky(key: &OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    LEAKY_VARS.contains(&key) || LEAKY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The outer build's target dir: the nearest ancestor of `OUT_DIR` that
/// cargo tagged with `CACHEDIR.TAG` (`<target>/[<triple>/]<profile>/build/
/// <pkg>-<hash>/out`), shared by all profiles so the component builds once.
fn outer_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .or_else(|| env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| out_dir.join("../../../..").to_path_buf())
}

/// Installs the wasm target through rustup when the toolchain lacks it
/// (rust-toolchain.toml lists it, but older rustups ignore `targets`).
fn ensure_wasm_target(rustc: &OsStr, root: &Path) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let installed = sysroot.as_deref().is_some_and(|s| s.join("lib/rustlib").join(WASM_TARGET).is_dir());
    if installed {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.current_dir(root).args(["target", "add", WASM_TARGET]);
    // The sysroot's directory name is the toolchain cargo is building with.
    if let Some(toolchain) = sysroot.as_deref().and_then(Path::file_name) {
        rustup.arg("--toolchain").arg(toolchain);
    }
    let status = rustup.status().unwrap_or_else(|e| panic!("{WASM_TARGET} is missing and rustup failed to run: {e}"));
    assert!(status.success(), "rustup target add {WASM_TARGET} failed");
}
