//! kiln's core exposed to JavaScript. The UI's Web Worker drives it.

use wasm_bindgen::prelude::*;

/// The core's version, shown in the UI's footer.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}
