//! `kiln-build <out-dir>`: writes the web UI as a standalone static site
//! (offline mode works from any static host; kiln embeds the same files).

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_build::site;

fn main() -> ExitCode {
    let Some(out) = env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: kiln-build <out-dir>");
        return ExitCode::from(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("build-support lives in the workspace root");
    match site::build(root, &root.join("target/web-build"), &out) {
        Ok(files) => {
            for f in &files {
                println!("{}", out.join(&f.path).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kiln-build: {e}");
            ExitCode::FAILURE
        }
    }
}
