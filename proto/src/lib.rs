//! Pyroscope's wire messages as prost types, generated at build time from the
//! `.proto` files beside this crate. `no_std` (with `alloc`) so the core can
//! decode them in wasm; the `json` feature adds the proto3 JSON mapping
//! (pbjson's generated code needs `std`).
#![cfg_attr(not(feature = "json"), no_std)]

extern crate alloc;

macro_rules! package {
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file, ".rs"));
        #[cfg(feature = "json")]
        include!(concat!(env!("OUT_DIR"), "/", $file, ".serde.rs"));
    };
}

pub mod types {
    pub mod v1 {
        package!("types.v1");
    }
}

pub mod push {
    pub mod v1 {
        package!("push.v1");
    }
}

pub mod querier {
    pub mod v1 {
        package!("querier.v1");
    }
}

pub mod google {
    pub mod v1 {
        package!("google.v1");
    }
}

/// The JFR `labels` part (`LabelsSnapshot`); no JSON mapping, it only
/// arrives as protobuf.
pub mod jfr {
    include!(concat!(env!("OUT_DIR"), "/jfr.rs"));
}
