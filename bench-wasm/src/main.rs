//! The guest side of `bench-native-vs-wasm`: a WASI command (built for
//! wasm32-wasip2; it also runs natively) that loads the fixtures, times
//! [`kiln_bench_wasm::workload`] itself with the same loop the native side
//! uses, and prints one parsable result line.
//!
//! Usage: `kiln-bench-wasm [--jfr] <pprof or jfr dir> [warmup] [iterations]`
//! (`--jfr`: the JFR conversion workload, `kiln_bench_wasm::jfr`).

use std::path::Path;

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let jfr = args.get(1).is_some_and(|a| a == "--jfr");
    if jfr {
        args.remove(1);
    }
    let Some(dir) = args.get(1) else {
        eprintln!("usage: kiln-bench-wasm [--jfr] <pprof or jfr dir> [warmup] [iterations]");
        std::process::exit(2);
    };
    let arg = |i: usize, default: usize| args.get(i).map_or(default, |s| s.parse().expect("a count"));
    let (warmup, iterations) = (arg(2, kiln_bench_wasm::WARMUP), arg(3, kiln_bench_wasm::ITERATIONS));

    if jfr {
        let recordings = kiln_bench_wasm::jfr::load_recordings(Path::new(dir));
        println!("kiln-bench files={} bytes={}", recordings.files.len(), recordings.total_bytes());
        let m = kiln_bench_wasm::measure_with(|| kiln_bench_wasm::jfr::workload(&recordings), warmup, iterations);
        println!("{}", m.to_line());
        return;
    }
    let fixtures = kiln_bench_wasm::load_fixtures(Path::new(dir));
    println!("kiln-bench files={} bytes={}", fixtures.profiles.len(), fixtures.total_bytes());
    let m = kiln_bench_wasm::measure(&fixtures.bytes(), warmup, iterations);
    println!("{}", m.to_line());
}
