//! The workload of the native-vs-wasm benchmark, compiled unchanged for the
//! host and for `wasm32-wasip2`: every pprof of the shared test data goes
//! through kiln-core's real ingest path (`ingest::push` into a
//! `MemoryStore`), then every stored profile type is queried back through
//! `query::select_merge_stacktraces` as a flame graph (8192 nodes).
//!
//! Loading and timestamp rewriting happen in [`load_fixtures`], outside the
//! timed region, on both sides alike; [`measure`] is the one timing loop both
//! sides use.

pub mod jfr;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_core::ingest::{IngestLimits, RawProfile, push};
use kiln_core::pprof;
use kiln_core::query::{Context, QueryLimits, profile_types, select_merge_stacktraces};
use kiln_core::store::{HOUR_MS, MemoryStore, Storage};
use kiln_proto::querier::v1::{ProfileFormat, ProfileTypesRequest, SelectMergeStacktracesRequest};
use kiln_proto::types::v1::LabelPair;
use prost::Message;

/// The fixed "now" of every run (an hour boundary), so results do not depend
/// on the wall clock and both sides compute the same checksum.
pub const NOW_MS: i64 = 1_800_000_000_000;
/// Every fixture is restamped this long before [`NOW_MS`]: inside the
/// default ingestion window and inside the queried hour.
const PROFILE_AGE_MS: i64 = 60_000;
pub const MAX_NODES: i64 = 8192;
pub const TENANT: &str = "bench";
pub const SERVICE: &str = "bench";

pub const WARMUP: usize = 2;
pub const ITERATIONS: usize = 10;

/// `KILN_SHARED`, else `../shared` beside the workspace. Panics loudly when
/// the test data is missing: the benchmark has nothing to measure.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let pprof = dir.join("testdata/pprof");
    assert!(
        pprof.is_dir(),
        "SHARED TEST DATA MISSING: expected {} (set KILN_SHARED); the benchmark cannot run",
        pprof.display()
    );
    dir.canonicalize().unwrap_or(dir)
}

/// The pprof fixtures under `dir`, recursively, in path order.
pub struct Fixtures {
    /// (path relative to `dir`, restamped bytes: gzip when the file was).
    pub profiles: Vec<(String, Vec<u8>)>,
    /// (path relative to `dir`, why it was left out).
    pub skipped: Vec<(String, String)>,
}

impl Fixtures {
    pub fn bytes(&self) -> Vec<Vec<u8>> {
        self.profiles.iter().map(|(_, b)| b.clone()).collect()
    }

    pub fn total_bytes(&self) -> usize {
        self.profiles.iter().map(|(_, b)| b.len()).sum()
    }
}

/// Reads every file under `dir`, sets each pprof's `time_nanos` to one
/// minute before [`NOW_MS`] (re-gzipping what was gzipped), and keeps the
/// ones the real ingest path accepts; companions such as `.txt`/`.json`
/// files, or profiles kiln rejects, are reported in `skipped`.
pub fn load_fixtures(dir: &Path) -> Fixtures {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no files under {}", dir.display());
    let mut out = Fixtures { profiles: Vec::new(), skipped: Vec::new() };
    for path in files {
        let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        match restamp(&bytes).and_then(|b| check_ingest(&b).map(|()| b)) {
            Ok(b) => out.profiles.push((name, b)),
            Err(why) => out.skipped.push((name, why)),
        }
    }
    assert!(!out.profiles.is_empty(), "no pprof under {} was accepted", dir.display());
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()));
        let path = entry.path();
        let kind = entry.file_type().unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        if kind.is_dir() {
            walk(&path, out);
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

fn restamp(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut profile = pprof::decode(bytes, &pprof::Limits::default()).map_err(|e| e.to_string())?;
    profile.time_nanos = (NOW_MS - PROFILE_AGE_MS) * 1_000_000;
    let plain = profile.encode_to_vec();
    if !kiln_core::gzip::is_gzip(bytes) {
        return Ok(plain);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

fn check_ingest(bytes: &[u8]) -> Result<(), String> {
    let store = MemoryStore::default();
    ingest(&Storage::new(&store, TENANT), &labels(), bytes, &mut || [0; 16]).map_err(|e| e.to_string())
}

fn labels() -> [LabelPair; 2] {
    [
        LabelPair { name: "__name__".into(), value: "process_cpu".into() },
        LabelPair { name: "service_name".into(), value: SERVICE.into() },
    ]
}

fn ingest(
    storage: &Storage<'_, MemoryStore>,
    labels: &[LabelPair],
    bytes: &[u8],
    new_id: &mut dyn FnMut() -> [u8; 16],
) -> kiln_core::Result<()> {
    let raw = RawProfile { labels, bytes };
    push(storage, &[raw], NOW_MS, new_id, &IngestLimits::default()).map(|_| ())
}

/// The measured work: one push per profile (as one upload each) into a fresh
/// in-memory store, then a flame graph per stored profile type over the
/// queried hour. Returns a checksum of the answers (sum of the flame graphs'
/// totals, names and levels) so nothing can be optimised away.
pub fn workload(profiles: &[Vec<u8>]) -> i64 {
    let store = MemoryStore::default();
    let storage = Storage::new(&store, TENANT);
    let labels = labels();
    let mut next_id = 0u128;
    let mut new_id = || {
        next_id += 1;
        next_id.to_le_bytes()
    };
    for bytes in profiles {
        ingest(&storage, &labels, bytes, &mut new_id).expect("fixtures are checked when loaded");
    }

    let limits = QueryLimits::default();
    let cx = Context { storage, now_ms: NOW_MS, limits: &limits, allow_utf8_label_names: false };
    let (start, end) = (NOW_MS - HOUR_MS, NOW_MS);
    let types = profile_types(&cx, &ProfileTypesRequest { start, end }).expect("profile types");
    assert!(!types.profile_types.is_empty(), "nothing was stored");
    let mut checksum = 0i64;
    for t in types.profile_types {
        let req = SelectMergeStacktracesRequest {
            profile_type_id: t.id,
            label_selector: format!("{{service_name=\"{SERVICE}\"}}"),
            start,
            end,
            max_nodes: Some(MAX_NODES),
            format: ProfileFormat::Flamegraph as i32,
            ..Default::default()
        };
        let fg = select_merge_stacktraces(&cx, &req).expect("merge").flamegraph.expect("a flame graph");
        checksum = checksum
            .wrapping_add(fg.total)
            .wrapping_add(fg.names.len() as i64)
            .wrapping_add(fg.levels.iter().map(|l| l.values.len() as i64).sum::<i64>());
    }
    checksum
}

/// Per-iteration wall times of [`workload`] after `warmup` untimed runs.
pub struct Measurement {
    pub checksum: i64,
    pub samples_ns: Vec<u64>,
}

impl Measurement {
    pub fn median_ns(&self) -> f64 {
        median(&self.samples_ns)
    }

    /// The line the wasm guest prints and the runner parses.
    pub fn to_line(&self) -> String {
        let samples: Vec<String> = self.samples_ns.iter().map(u64::to_string).collect();
        format!("kiln-bench checksum={} samples_ns={}", self.checksum, samples.join(","))
    }

    pub fn from_line(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix("kiln-bench checksum=")?;
        let (checksum, samples) = rest.split_once(" samples_ns=")?;
        let samples_ns = samples.split(',').map(str::parse).collect::<Result<Vec<u64>, _>>().ok()?;
        Some(Self { checksum: checksum.parse().ok()?, samples_ns })
    }
}

pub fn measure(profiles: &[Vec<u8>], warmup: usize, iterations: usize) -> Measurement {
    measure_with(|| workload(std::hint::black_box(profiles)), warmup, iterations)
}

/// The timing loop of every workload: `warmup` untimed runs, then
/// `iterations` timed ones, all required to give the same checksum.
pub fn measure_with(workload: impl Fn() -> i64, warmup: usize, iterations: usize) -> Measurement {
    assert!(iterations > 0, "at least one measured iteration");
    let mut checksum = None;
    let mut check = |c: i64| {
        let first = *checksum.get_or_insert(c);
        assert_eq!(first, c, "workload is not deterministic");
    };
    for _ in 0..warmup {
        check(std::hint::black_box(workload()));
    }
    let mut samples_ns = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let c = std::hint::black_box(workload());
        samples_ns.push(t.elapsed().as_nanos() as u64);
        check(c);
    }
    Measurement { checksum: checksum.expect("ran"), samples_ns }
}

pub fn median(samples: &[u64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n % 2 == 1 { s[n / 2] as f64 } else { (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0 }
}
