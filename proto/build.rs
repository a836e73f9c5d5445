//! Compiles the .proto files with protox (no `protoc` binary needed) into
//! prost types, plus pbjson serde impls for the proto3 JSON mapping.

use std::{env, path::PathBuf};

const FILES: &[&str] = &[
    "types/v1/types.proto",
    "push/v1/push.proto",
    "querier/v1/querier.proto",
    "google/v1/profile.proto",
    "jfr/jfr_labels.proto",
];

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let descriptors = protox::compile(FILES, [&root]).expect("compile .proto files");
    let descriptor_path = out.join("descriptors.bin");
    std::fs::write(&descriptor_path, prost_build_message(&descriptors)).unwrap();

    let mut config = prost_build::Config::new();
    config.file_descriptor_set_path(&descriptor_path);
    config.skip_protoc_run();
    // no_std has no HashMap; the only maps are the JFR label snapshot's.
    config.btree_map(["."]);
    config.compile_fds(descriptors).expect("generate prost code");

    let descriptor_set = std::fs::read(&descriptor_path).unwrap();
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)
        .unwrap()
        // connect-go's JSON codec discards unknown fields (spec wire.md §2.1).
        .ignore_unknown_fields()
        .build(&[".types.v1", ".push.v1", ".querier.v1", ".google.v1"])
        .expect("generate pbjson code");
}

fn prost_build_message(descriptors: &prost_types::FileDescriptorSet) -> Vec<u8> {
    prost::Message::encode_to_vec(descriptors)
}
