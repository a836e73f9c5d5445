//! Builds the kiln component (`kiln-component`, wasm32-wasip2) from source as
//! part of the host build and hands its path to the crate as
//! `KILN_COMPONENT_WASM`, so `kiln` embeds it with `include_bytes!`.

use std::env;
use std::path::PathBuf;

use kiln_build::{nested, site};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("wasm-host lives in the workspace root").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));

    println!("cargo:rerun-if-changed=build.rs");
    for path in
        ["component", "core", "proto", "web", "build-support", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml"]
    {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    let outer = nested::outer_target_dir(&out_dir);
    let web_target_dir = outer.join("web-build");
    let wasm = nested::build(
        &root,
        "kiln-component",
        "wasm32-wasip2",
        &outer.join("component-build"),
        "kiln_component.wasm",
        &[(site::TARGET_DIR_VAR, &web_target_dir)],
    );
    println!("cargo:rustc-env=KILN_COMPONENT_WASM={}", wasm.display());
}
