//! Server benchmarks for the ingest path, measured in one run:
//! - ingest through the running host (HTTP, wasm component, store) against
//!   bare native decode (gunzip + protobuf) of the same payloads;
//! - per-request overhead of the component on a trivial request (`/ready`).
//!
//! Run: `cargo bench -p kiln-tests --bench server`

use std::time::{Duration, Instant};

use kiln_proto::google::v1::Profile;
use kiln_tests::Server;
use kiln_tests::fixtures::{gunzip_if_needed, now_ns, shared_dir, with_time};
use prost::Message;

const ROUNDS: usize = 5;
const READY_REQUESTS: usize = 2000;
const CLIENTS: usize = 8;

fn pprof_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![shared_dir().join("testdata/pprof")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out.sort();
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One line per measurement: time per round and throughput.
fn report(what: &str, round: Duration, profiles: usize, mb: f64) {
    let secs = round.as_secs_f64();
    println!(
        "{what:<38} {:>8.2} ms/round {:>8.0} profiles/s {:>7.1} MB/s",
        secs * 1e3,
        profiles as f64 / secs,
        mb / secs
    );
}

fn main() {
    let server = Server::start_temp();

    // Payloads: every pprof of the test data that the server accepts, stamped
    // with a current time and gzipped as SDKs send them.
    let mut payloads = Vec::new();
    for (name, bytes) in pprof_files() {
        let Ok(p) = Profile::decode(&gunzip_if_needed(&bytes)[..]) else { continue };
        if p.sample_type.is_empty() {
            continue;
        }
        let payload = with_time(&bytes, now_ns());
        if server.try_push_pprof(&[("__name__", "process_cpu"), ("service_name", "warmup")], &payload) {
            payloads.push(payload);
        } else {
            eprintln!("skipped (rejected): {name}");
        }
    }
    let compressed: usize = payloads.iter().map(Vec::len).sum();
    let raw: usize = payloads.iter().map(|p| gunzip_if_needed(p).len()).sum();

    // Bare decode, native: gunzip + protobuf decode of the same payloads.
    let mut decode_times = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for p in &payloads {
            let profile = Profile::decode(&gunzip_if_needed(p)[..]).unwrap();
            std::hint::black_box(profile);
        }
        decode_times.push(t.elapsed());
    }

    // The core's push pipeline alone, native, without HTTP, wasm or store:
    // decode, validate, split into series, build and encode segments.
    let limits = kiln_core::ingest::IngestLimits::default();
    let labels = [kiln_proto::types::v1::LabelPair { name: "__name__".into(), value: "process_cpu".into() }];
    let mut core_times = Vec::new();
    let mut stored = 0;
    for round in 0..ROUNDS {
        let now_ms = now_ns() / 1_000_000;
        let t = Instant::now();
        for p in &payloads {
            let raw = kiln_core::ingest::RawProfile { labels: &labels, bytes: p };
            let batch = kiln_core::ingest::prepare(&raw, now_ms, [0; 16], &limits).unwrap();
            if round == 0 {
                stored += batch.series.iter().map(|w| w.symbols.len() + w.profile.len()).sum::<usize>();
            }
            std::hint::black_box(batch);
        }
        core_times.push(t.elapsed());
    }

    // Ingest through the server, one client, one push per profile.
    let mut ingest_times = Vec::new();
    for round in 0..ROUNDS {
        let service = format!("bench-{round}");
        let t = Instant::now();
        for p in &payloads {
            assert!(server.try_push_pprof(&[("__name__", "process_cpu"), ("service_name", &service)], p));
        }
        ingest_times.push(t.elapsed());
    }

    // The same pushes from several clients at once, as a fleet of SDKs sends
    // them: the host's group commit shares each fsync between requests.
    let mut concurrent_times = Vec::new();
    for round in 0..ROUNDS {
        let t = Instant::now();
        std::thread::scope(|s| {
            for client in 0..CLIENTS {
                let (server, payloads) = (&server, &payloads);
                s.spawn(move || {
                    let service = format!("bench-c{round}-{client}");
                    for p in payloads.iter().skip(client).step_by(CLIENTS) {
                        assert!(server.try_push_pprof(&[("__name__", "process_cpu"), ("service_name", &service)], p));
                    }
                });
            }
        });
        concurrent_times.push(t.elapsed());
    }

    // Per-request overhead: instantiate the component, answer /ready.
    let mut ready = Vec::with_capacity(READY_REQUESTS);
    for _ in 0..READY_REQUESTS {
        let t = Instant::now();
        let (status, _, _) = server.get("/ready");
        ready.push(t.elapsed());
        assert_eq!(status, 200);
    }

    let decode = median(decode_times);
    let ingest = median(ingest_times);
    let concurrent = median(concurrent_times);
    let (n, mb) = (payloads.len(), raw as f64 / 1e6);
    println!("payloads: {n} pprof files, {mb:.2} MB uncompressed, {:.2} MB gzipped", compressed as f64 / 1e6);
    println!(
        "segment bytes written per round: {:.2} MB ({:.0}% of the gzipped payloads)",
        stored as f64 / 1e6,
        100.0 * stored as f64 / compressed as f64
    );
    report("bare decode (native gunzip + prost)", decode, n, mb);
    report("core push pipeline (native, no I/O)", median(core_times), n, mb);
    report("ingest via server (HTTP+wasm+store)", ingest, n, mb);
    report(&format!("ingest via server, {CLIENTS} clients"), concurrent, n, mb);
    println!(
        "ratio ingest / bare decode, 1 client:  {:.2} (target <= 2.5)",
        ingest.as_secs_f64() / decode.as_secs_f64()
    );
    println!(
        "ratio ingest / bare decode, {CLIENTS} clients: {:.2} (target <= 2.5)",
        concurrent.as_secs_f64() / decode.as_secs_f64()
    );
    println!(
        "GET /ready round trip over {READY_REQUESTS} requests: median {:.3} ms (target < 1 ms)",
        median(ready).as_secs_f64() * 1e3
    );
}
