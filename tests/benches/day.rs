//! A day of data through the running host: 20 series x 8,640 profiles (one
//! every 10 s) of a real Go CPU profile, varied per upload as a live service
//! varies. Measures the issue-3 queries over HTTP and the stored bytes per
//! profile next to the gzipped pprof size.
//!
//! Loading 172,800 pushes over HTTP would take most of the run in fsyncs, so
//! the day is written by the core's own ingest path (the code the component
//! runs) into memory and then copied into the server's redb store; every
//! query then goes through the real server.
//!
//! Run: `cargo bench -p kiln-tests --bench day` (`KILN_DAY_HOURS=N` for a
//! shorter day while developing).

use std::time::{Duration, Instant};

use kiln_core::ingest::{IngestLimits, RawProfile, prepare};
use kiln_core::store::{MemoryStore, Storage};
use kiln_proto::google::v1::Profile;
use kiln_proto::types::v1::LabelPair;
use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, gzip, testdata};
use prost::Message;
use serde_json::json;

const SERIES: usize = 20;
const EVERY_MS: i64 = 10_000;
const QUERY_RUNS: usize = 7;
const PROFILE: &str = "pprof/pyroscope/gotruncatefix/cpu_go_truncated_1.pb.gz.fixed";
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// xorshift64: deterministic variation without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The base profile with about a fifth of its samples dropped and the rest
/// scaled, so uploads differ as successive 10 s profiles of a service do.
fn vary(base: &Profile, rng: &mut Rng, time_ms: i64) -> Profile {
    let mut p = base.clone();
    p.time_nanos = time_ms * 1_000_000;
    p.sample.retain(|_| rng.next() % 5 != 0);
    for s in &mut p.sample {
        let scale = 1 + (rng.next() % 4) as i64;
        s.value.iter_mut().for_each(|v| *v *= scale);
        // Span ids would make every sample unique; a plain CPU profile has none.
        s.label.clear();
    }
    p
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let hours: i64 = std::env::var("KILN_DAY_HOURS").ok().and_then(|h| h.parse().ok()).unwrap_or(24);
    let per_series = (hours * 3_600_000 / EVERY_MS) as usize;
    let base = decode_pprof(&testdata(PROFILE));
    let now_ms = kiln_tests::fixtures::now_ns() / 1_000_000;
    let day_start = now_ms - hours * 3_600_000;

    // Load: every series uploads every 10 s, in time order as a fleet does.
    let memory = MemoryStore::default();
    let storage = Storage::new(&memory, "anonymous");
    let limits = IngestLimits::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut gzipped_sampled, mut sampled) = (0usize, 0usize);
    let load = Instant::now();
    for i in 0..per_series {
        for s in 0..SERIES {
            let time_ms = day_start + i as i64 * EVERY_MS + s as i64 * 37;
            let profile = vary(&base, &mut rng, time_ms);
            let bytes = profile.encode_to_vec();
            if (i * SERIES + s) % 100 == 0 {
                gzipped_sampled += gzip(&bytes).len();
                sampled += 1;
            }
            let labels = [
                LabelPair { name: "__name__".into(), value: "process_cpu".into() },
                LabelPair { name: "service_name".into(), value: format!("svc-{}", s % 10) },
                LabelPair { name: "pod".into(), value: format!("pod-{s}") },
            ];
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&rng.next().to_le_bytes());
            let batch = prepare(&RawProfile { labels: &labels, bytes: &bytes }, time_ms, id, &limits).unwrap();
            storage.write(batch).unwrap();
        }
    }
    let profiles = per_series * SERIES;
    let load_time = load.elapsed();
    // The same queries on the core natively, without HTTP, wasm or redb.
    let native = {
        let limits = kiln_core::query::QueryLimits::default();
        let cx = kiln_core::query::Context {
            storage: Storage::new(&memory, "anonymous"),
            now_ms,
            limits: &limits,
            allow_utf8_label_names: false,
        };
        let req = |start: i64| kiln_proto::querier::v1::SelectMergeStacktracesRequest {
            profile_type_id: CPU.into(),
            label_selector: "{}".into(),
            start,
            end: now_ms,
            ..Default::default()
        };
        let t = Instant::now();
        kiln_core::query::select_merge_stacktraces(&cx, &req(now_ms - 3_600_000)).unwrap();
        let hour = t.elapsed();
        let t = Instant::now();
        kiln_core::query::select_merge_stacktraces(&cx, &req(day_start)).unwrap();
        let day = t.elapsed();
        let t = Instant::now();
        let series_req = kiln_proto::querier::v1::SelectSeriesRequest {
            profile_type_id: CPU.into(),
            label_selector: "{}".into(),
            start: day_start,
            end: now_ms,
            step: 60.0,
            group_by: vec!["service_name".into()],
            ..Default::default()
        };
        kiln_core::query::select_series(&cx, &series_req).unwrap();
        (hour, day, t.elapsed())
    };

    drop(storage);
    let entries = memory.into_entries();
    let stored: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
    let gz_per_profile = gzipped_sampled as f64 / sampled as f64;
    let stored_per_profile = stored as f64 / profiles as f64;

    // Copy into the server's store, then serve it.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = kiln_host::store::Store::open(&dir.path().join("kiln.redb")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for chunk in entries.chunks(20_000) {
            rt.block_on(store.set_many(chunk.to_vec())).unwrap();
        }
        store.close();
    }
    let server = Server::start(dir.path());

    let merge = |start: i64, end: i64| {
        let (status, body) = server.connect_json(
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end}),
        );
        assert_eq!(status, 200, "{body}");
        body["flamegraph"]["total"].as_str().unwrap().parse::<i64>().unwrap()
    };
    let series = |start: i64, end: i64| {
        let (status, body) = server.connect_json(
            "/querier.v1.QuerierService/SelectSeries",
            json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end,
                   "step": 60.0, "groupBy": ["service_name"]}),
        );
        assert_eq!(status, 200, "{body}");
        body["series"].as_array().unwrap().len()
    };
    let render = |from: &str| {
        let query = format!("{CPU}{{}}");
        let (status, _, body) = server.get(&format!("/pyroscope/render?query={query}&from={from}&until=now"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        body.len()
    };
    let time = |f: &dyn Fn() -> usize| {
        let runs: Vec<Duration> = (0..QUERY_RUNS)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect();
        median(runs)
    };
    let end = now_ms;
    let last_hour = time(&|| merge(now_ms - 3_600_000, end) as usize);
    let whole_day = time(&|| merge(day_start, end) as usize);
    let day_series = time(&|| series(day_start, end));
    let render_hour = time(&|| render("now-1h"));
    assert!(merge(day_start, end) > 0);
    assert_eq!(series(day_start, end), 10, "one series per service_name");

    println!(
        "profile: {PROFILE} ({} samples, {} locations), varied per upload",
        base.sample.len(),
        base.location.len()
    );
    println!("loaded {profiles} profiles ({SERIES} series x {per_series}) in {:.1} s", load_time.as_secs_f64());
    println!(
        "stored bytes per profile: {stored_per_profile:.0} B; gzipped pprof: {gz_per_profile:.0} B; ratio {:.1}% (target < 25%)",
        100.0 * stored_per_profile / gz_per_profile
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "native core, one run: last hour {:.1} ms, whole range {:.1} ms, series {:.1} ms",
        ms(native.0),
        ms(native.1),
        ms(native.2)
    );
    println!("SelectMergeStacktraces, last hour:        median {:>8.1} ms (target < 150)", ms(last_hour));
    println!("SelectMergeStacktraces, whole range:      median {:>8.1} ms (target < 1500)", ms(whole_day));
    println!("SelectSeries, whole range, by service:    median {:>8.1} ms (target < 300)", ms(day_series));
    println!("/pyroscope/render, last hour:             median {:>8.1} ms (target < 200)", ms(render_hour));
}
