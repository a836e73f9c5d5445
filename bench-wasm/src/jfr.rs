//! The JFR workload: every recording of the shared test data
//! (`testdata/jfr`, with its `labels` part where it has one) converted to
//! profiles by `kiln_core::jfr::profiles`. Recordings are inflated when
//! loading, outside the timed region, so the rate is of uncompressed JFR.

use std::path::Path;

use kiln_core::jfr::{Options, profiles};

/// One recording: (file name, uncompressed JFR, labels part as stored).
pub struct Recordings {
    pub files: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
}

impl Recordings {
    pub fn total_bytes(&self) -> usize {
        self.files.iter().map(|(_, jfr, _)| jfr.len()).sum()
    }
}

/// The `*.jfr` / `*.jfr.gz` files directly under `dir`, in name order, each
/// with `<stem>.labels.pb.gz` or `<stem>.labels.gz` beside it if present.
pub fn load_recordings(dir: &Path) -> Recordings {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jfr") || n.ends_with(".jfr.gz"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no JFR recordings under {}", dir.display());
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
    let files = names
        .into_iter()
        .map(|name| {
            let stored = read(&name);
            let jfr = if kiln_core::gzip::is_gzip(&stored) {
                kiln_core::gzip::decompress(&stored, 1 << 30).unwrap_or_else(|e| panic!("{name}: {e}"))
            } else {
                stored
            };
            let stem = name.trim_end_matches(".gz").trim_end_matches(".jfr");
            let labels = [format!("{stem}.labels.pb.gz"), format!("{stem}.labels.gz")]
                .into_iter()
                .find(|l| dir.join(l).is_file())
                .map(|l| read(&l));
            (name, jfr, labels)
        })
        .collect();
    Recordings { files }
}

/// Converts every recording; returns a checksum of the profiles (samples
/// and values) so nothing can be optimised away.
pub fn workload(recordings: &Recordings) -> i64 {
    let options = Options { max_decompressed_size: 1 << 30, ..Options::default() };
    let mut checksum = 0i64;
    for (name, jfr, labels) in &recordings.files {
        let converted = profiles(jfr, labels.as_deref(), &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        for p in converted {
            checksum = checksum.wrapping_add(p.profile.sample.len() as i64);
            for s in &p.profile.sample {
                checksum = checksum.wrapping_add(s.value.iter().sum::<i64>());
            }
        }
    }
    checksum
}
