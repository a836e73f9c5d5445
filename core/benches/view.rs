//! The browser's load path at scale: a large pprof made of real test data
//! (google-pprof's `large.cpu`, 23 k functions, copied under distinct root
//! frames until it reaches the target size) read by the streaming reader
//! and, for comparison, by decoding it whole with prost first; then the
//! first flame graph, and the same through the whole tree. Peak heap is
//! counted by a wrapping allocator, the input's bytes included.
//!
//! Run: `cargo bench -p kiln-core --bench view` (`KILN_SHARED` or `../shared`;
//! `VIEW_BENCH_MB=10,100` picks the sizes, `VIEW_BENCH_OUT=dir` also writes
//! the generated pprofs there).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use kiln_core::flamegraph::flamegraph;
use kiln_core::pprof::{Function, Line, Location, Profile, Sample};
use kiln_core::{gzip, view};
use prost::Message;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            // A moving realloc holds both blocks for a moment.
            PEAK.fetch_max(now + layout.size(), Ordering::Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result, seconds taken, and the peak heap and
/// the heap still held at the end, both above the heap in use when it started.
fn measure<T>(f: impl FnOnce() -> T) -> (T, f64, usize, isize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    let held = CURRENT.load(Ordering::Relaxed) as isize - base as isize;
    (out, secs, PEAK.load(Ordering::Relaxed) - base, held)
}

fn testdata(path: &str) -> Vec<u8> {
    let dir = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let p = dir.join("testdata").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("SHARED TEST DATA MISSING: {}: {e}", p.display()))
}

/// `base`'s samples copied under distinct root frames `copy0`, `copy1`, ...
/// until the encoded profile reaches `target` bytes.
fn grown(base: &Profile, target: usize) -> Vec<u8> {
    let mut p = base.clone();
    let per_copy = base.sample.iter().map(|s| s.encoded_len() + 8).sum::<usize>();
    let copies = target.saturating_sub(base.encoded_len()).div_ceil(per_copy).max(1);
    p.sample.clear();
    for k in 0..copies {
        p.string_table.push(format!("copy{k}"));
        let id = p.function.iter().map(|f| f.id).max().unwrap_or(0) + 1;
        p.function.push(Function { id, name: p.string_table.len() as i64 - 1, ..Default::default() });
        let loc = p.location.iter().map(|l| l.id).max().unwrap_or(0) + 1;
        p.location.push(Location { id: loc, line: vec![Line { function_id: id, line: 0 }], ..Default::default() });
        for s in &base.sample {
            let mut location_id = s.location_id.clone();
            location_id.push(loc);
            p.sample.push(Sample { location_id, ..s.clone() });
        }
    }
    p.encode_to_vec()
}

const MB: f64 = 1_000_000.0;
/// Runs of the load and of the first flame graph; the fastest is reported.
const RUNS: usize = 3;

fn main() {
    // Files of the browser benchmark (`npm run bench` writes them), measured as they are.
    if let Ok(files) = std::env::var("VIEW_BENCH_FILES") {
        for path in files.split(',') {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            println!("{path}: {:.1} MB", bytes.len() as f64 / MB);
            bench(bytes);
        }
        return;
    }
    let raw = gzip::decompress(&testdata("pprof/google-pprof/large.cpu"), 1 << 30).unwrap();
    let base = Profile::decode(&raw[..]).unwrap();
    let sizes = std::env::var("VIEW_BENCH_MB").unwrap_or_else(|_| "10,100".into());
    for target in sizes.split(',').map(|mb| mb.trim().parse::<usize>().expect("VIEW_BENCH_MB: sizes in MB") * 1_000_000)
    {
        let bytes = grown(&base, target);
        if let Some(dir) = std::env::var_os("VIEW_BENCH_OUT") {
            // The same inputs for the browser benchmark.
            std::fs::write(PathBuf::from(dir).join(format!("view-{}MB.pb", target / 1_000_000)), &bytes).unwrap();
        }
        println!("pprof of {:.1} MB (large.cpu copied under distinct roots)", bytes.len() as f64 / MB);
        bench(bytes);
    }
}

/// Streaming load vs prost decode, gzipped load, first flame graph (merged
/// only as far as it keeps nodes) vs the whole tree it replaced.
fn bench(bytes: Vec<u8>) {
    let size = bytes.len() as f64;
    let mut ws = view::Workspace::new();
    // `load` keeps a pprof's bytes: the peak and what is held count them.
    // Best of three: this machine's timings vary by a third run to run.
    let (mut id, mut load_s, mut load_peak, mut load_held) = (0, f64::MAX, 0, 0);
    for _ in 0..RUNS {
        ws.remove(id);
        let input = bytes.clone();
        let (new_id, s, peak, held) = measure(|| ws.load("f", input, &mut |_, _| {}).unwrap().id);
        (id, load_s, load_peak, load_held) = (new_id, load_s.min(s), peak, held);
    }
    let loaded = &ws.files()[0].loaded;
    let (type_id, stacks) = (loaded.types[1].profile_type.id(), loaded.types[1].stacks);
    println!(
        "  streaming load:    {:7.3} s  {:7.1} MB/s  peak heap {:.2}x input  ({} types, {} stacks)",
        load_s,
        size / MB / load_s,
        (load_peak + bytes.len()) as f64 / size,
        loaded.types.len(),
        stacks
    );

    let input = bytes.clone();
    let (decoded, prost_s, prost_peak, _) = measure(|| {
        let profile = Profile::decode(&input[..]).unwrap();
        drop(input);
        view::load_decoded_pprof(profile).unwrap()
    });
    let totals = |l: &view::Loaded| l.types.iter().map(|t| t.total).collect::<Vec<_>>();
    assert_eq!(totals(&decoded), totals(loaded));
    println!(
        "  prost decode+load: {:7.3} s  {:7.1} MB/s  peak heap {:.2}x input  (streaming is {:.1}x faster)",
        prost_s,
        size / MB / prost_s,
        (prost_peak + bytes.len()) as f64 / size,
        prost_s / load_s,
    );
    drop(decoded);

    let gz = gzip::compress(&bytes);
    let gz_size = gz.len();
    let (_, gz_s, gz_peak, _) = measure(|| view::load(gz, &mut |_, _| {}).unwrap());
    println!(
        "  gzipped ({:.1} MB): {:7.3} s  peak heap {:.2}x uncompressed size",
        gz_size as f64 / MB,
        gz_s,
        gz_peak as f64 / size
    );

    let (mut fg, mut fg_s, mut fg_peak) = (Default::default(), f64::MAX, 0);
    for _ in 0..RUNS {
        let (graph, s, peak, _) = measure(|| ws.flamegraph(&[id], &type_id, 0).unwrap());
        (fg, fg_s, fg_peak) = (graph, fg_s.min(s), peak);
    }
    println!(
        "  first flame graph: {:7.3} s  ({} names; peak {:.2}x input above the load's)",
        fg_s,
        fg.names.len(),
        fg_peak as f64 / size
    );
    let (tree, tree_s, tree_peak, _) = measure(|| ws.merge(&[id], &type_id).unwrap());
    let (whole, whole_s, _, _) = measure(|| flamegraph(&tree, view::DEFAULT_MAX_NODES));
    assert_eq!(fg, whole);
    println!(
        "  via the whole tree: {:6.3} s  ({} nodes; peak {:.2}x input above the load's; {:.1}x the time of the cut merge)",
        tree_s + whole_s,
        tree.node_count(),
        tree_peak as f64 / size,
        (tree_s + whole_s) / fg_s
    );
    println!(
        "  parse + first flame graph: {:.3} s; kept {:.2}x input, peak {:.2}x",
        load_s + fg_s,
        load_held as f64 / size,
        (load_peak.max(load_held as usize + fg_peak) + bytes.len()) as f64 / size
    );
}
