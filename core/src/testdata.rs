//! The shared test data (`../shared/testdata`, or `$KILN_SHARED/testdata`)
//! for the core's conformance tests, which fail loudly where it is absent.

extern crate std;

use alloc::vec::Vec;
use std::path::PathBuf;

/// The test data directory; panics if it has no `MANIFEST.md`.
pub fn dir() -> PathBuf {
    let dir = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("testdata");
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "SHARED TEST DATA MISSING: expected {} (set KILN_SHARED); conformance tests cannot run",
        dir.display()
    );
    dir
}

/// The bytes of a test data file, by its path under `testdata/`.
pub fn read(path: &str) -> Vec<u8> {
    let p = dir().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
