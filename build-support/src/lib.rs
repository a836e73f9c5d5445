//! Build steps shared by kiln's build scripts and its site builder: cargo
//! builds of wasm crates from inside another build, and the web UI's site.

pub mod nested;
pub mod site;
