//! Legacy `/ingest` requests captured from real SDKs (Go, Node.js, the old
//! Rust agent), replayed byte for byte except for timestamps, which move to
//! "now" to pass the ingestion window; then queried back.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_tests::Server;
use kiln_tests::fixtures::{
    append_time, capture_headers, capture_target, captures, decode_pprof, now_ns, sample_type_sums, testdata,
};

/// One replayed request: the profile types it must produce, in sample-type
/// order, for `service`.
struct Expect {
    service: &'static str,
    types: &'static [&'static str],
}

/// The IDs spec ingest.md §11 gives for these clients.
fn expected(client: &str, n: usize) -> Expect {
    match (client, n) {
        ("go-pyroscope", 1) => Expect {
            service: "go-capture-app",
            types: &["process_cpu:samples:count:cpu:nanoseconds", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"],
        },
        ("go-pyroscope", 2) => Expect {
            service: "go-capture-app",
            types: &[
                "memory:alloc_objects:count:space:bytes",
                "memory:alloc_space:bytes:space:bytes",
                "memory:inuse_objects:count:space:bytes",
                "memory:inuse_space:bytes:space:bytes",
            ],
        },
        ("go-pyroscope", 3) => Expect {
            service: "go-capture-app",
            types: &["mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"],
        },
        ("nodejs-pyroscope", 1 | 3) => Expect {
            service: "node-capture-app",
            // A `wall` sample type names every series `wall`; the cpu type
            // is then relabelled to process_cpu.
            types: &[
                "wall:samples:count:wall:nanoseconds",
                "wall:wall:nanoseconds:wall:nanoseconds",
                "process_cpu:cpu:nanoseconds:wall:nanoseconds",
            ],
        },
        ("nodejs-pyroscope", 2) => Expect {
            service: "node-capture-app",
            types: &["memory:inuse_objects:count:inuse_space:bytes", "memory:inuse_space:bytes:inuse_space:bytes"],
        },
        ("rust-pyroscope-legacy", 1 | 2) => {
            Expect { service: "rust-legacy-capture-app", types: &["process_cpu:cpu:nanoseconds:cpu:nanoseconds"] }
        }
        ("rust-pyroscope-legacy", 3) => {
            Expect { service: "rust-legacy-capture-app", types: &["process_cpu:samples:count::milliseconds"] }
        }
        other => panic!("no expectation for {other:?}"),
    }
}

/// `target` with query parameter `key` set to `value` (already encoded).
fn with_param(target: &str, key: &str, value: &str) -> String {
    let (path, query) = target.split_once('?').unwrap();
    let params: Vec<String> = query
        .split('&')
        .map(|p| if p.split('=').next() == Some(key) { format!("{key}={value}") } else { p.to_string() })
        .collect();
    format!("{path}?{}", params.join("&"))
}

fn param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    target.split_once('?')?.1.split('&').find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

/// `from`/`until` moved to now, in the unit the client used (digit count).
fn recent(target: &str, offset_s: i64) -> String {
    let mut target = target.to_string();
    for key in ["from", "until"] {
        if let Some(old) = param(&target, key) {
            let ns = now_ns() - offset_s * 1_000_000_000;
            let value = if old.len() == 19 { ns.to_string() } else { (ns / 1_000_000_000).to_string() };
            target = with_param(&target, key, &value);
        }
    }
    target
}

/// Where the bytes of multipart field `name` lie in `body`.
fn part_range(body: &[u8], boundary: &str, name: &str) -> std::ops::Range<usize> {
    let find = |needle: &[u8], from: usize| {
        body[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from).expect("multipart field")
    };
    let header = find(format!("name=\"{name}\"").as_bytes(), 0);
    let start = find(b"\r\n\r\n", header) + 4;
    start..find(format!("\r\n--{boundary}").as_bytes(), start)
}

/// Replays every `/ingest` capture of `client`; returns the expected total
/// per (service, profile type).
fn replay(server: &Server, client: &str, totals: &mut BTreeMap<(String, String), i64>) {
    for (i, body_path) in captures(client, "ingest.body.bin").iter().enumerate() {
        let head_path = body_path.to_string_lossy().replace(".body.bin", ".headers.txt");
        let headers = capture_headers(Path::new(&head_path));
        let content_type = headers.iter().find(|(k, _)| k == "content-type").unwrap().1.clone();
        let expect = expected(client, i + 1);
        let target = recent(&capture_target(Path::new(&head_path)), 2 + i as i64);
        let mut body = std::fs::read(body_path).unwrap();
        let time = now_ns() - (2 + i as i64) * 1_000_000_000;
        let sums: Vec<i64> = if let Some(boundary) = content_type.split("boundary=").nth(1) {
            // Go: the pprof is the multipart field `profile`.
            let range = part_range(&body, boundary, "profile");
            let profile = body[range.clone()].to_vec();
            body.splice(range, append_time(&profile, time));
            sample_type_sums(&decode_pprof(&profile)).into_iter().map(|(_, _, s)| s).collect()
        } else if param(&target, "format") == Some("pprof") {
            let sums = sample_type_sums(&decode_pprof(&body)).into_iter().map(|(_, _, s)| s).collect();
            // Node stamps the profile itself; the old Rust agent sends µs
            // (1970), which the server replaces by `from`.
            if decode_pprof(&body).time_nanos > 1_000_000_000_000_000_000 {
                body = append_time(&body, time);
            }
            sums
        } else {
            // Folded text at the default 100 Hz: 10 ms per count.
            let text = String::from_utf8(body.clone()).unwrap();
            let counts: i64 = text.lines().filter_map(|l| l.rsplit_once(' ')?.1.parse::<i64>().ok()).sum();
            vec![counts * 10_000_000]
        };
        assert_eq!(sums.len(), expect.types.len(), "{}", body_path.display());
        for (id, sum) in expect.types.iter().zip(sums) {
            *totals.entry((expect.service.to_string(), id.to_string())).or_default() += sum;
        }
        let extra: Vec<(&str, &str)> =
            headers.iter().filter(|(k, _)| k != "content-type").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, _, reply) = server.post(&target, &content_type, body, &extra);
        assert_eq!(status, 200, "{}: {}", body_path.display(), String::from_utf8_lossy(&reply));
        assert!(reply.is_empty(), "/ingest answers 200 with an empty body");
    }
}

/// The Java agent's three upload shapes of one JDK recording (raw with a
/// form content type, gzip multipart with context labels, plain multipart):
/// each gives the profile types the recording converts to, with the totals
/// the core's own conversion gives.
#[test]
fn java_jfr_captures_replay_and_query_back() {
    let server = Server::start_temp();
    let bodies = captures("java-jfr", "ingest.body.bin");
    assert_eq!(bodies.len(), 3);
    let raw = std::fs::read(&bodies[0]).unwrap();
    let options = kiln_core::jfr::Options { sample_rate: 100, ..Default::default() };
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for converted in kiln_core::jfr::profiles(&raw, None, &options).unwrap() {
        let name = converted.labels.get("__name__").unwrap().to_string();
        let p = &converted.profile;
        let s = |i: i64| p.string_table[i as usize].clone();
        let period = p.period_type.as_ref().map_or((String::new(), String::new()), |t| (s(t.r#type), s(t.unit)));
        for (i, st) in p.sample_type.iter().enumerate() {
            let id = format!("{name}:{}:{}:{}:{}", s(st.r#type), s(st.unit), period.0, period.1);
            let sum: i64 = p.sample.iter().map(|x| x.value[i]).filter(|v| *v > 0).sum();
            *expected.entry(id).or_default() += 3 * sum;
        }
    }
    expected.retain(|_, sum| *sum > 0);
    for (i, body_path) in bodies.iter().enumerate() {
        let head_path = body_path.to_string_lossy().replace(".body.bin", ".headers.txt");
        let headers = capture_headers(Path::new(&head_path));
        let content_type = headers.iter().find(|(k, _)| k == "content-type").unwrap().1.clone();
        let target = recent(&capture_target(Path::new(&head_path)), 20 + i as i64);
        let extra: Vec<(&str, &str)> =
            headers.iter().filter(|(k, _)| k != "content-type").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, _, reply) = server.post(&target, &content_type, std::fs::read(body_path).unwrap(), &extra);
        assert_eq!(status, 200, "{}: {}", body_path.display(), String::from_utf8_lossy(&reply));
    }
    let selector = "{service_name=\"java-capture-app\"}";
    let types = server.profile_types_of(selector);
    for prefix in ["process_cpu:", "memory:", "mutex:"] {
        assert!(types.iter().any(|t| t.starts_with(prefix)), "no {prefix} type in {types:?}");
    }
    assert_eq!(types, expected.keys().cloned().collect::<Vec<_>>());
    for (id, sum) in &expected {
        assert_eq!(server.flame_total(id, selector), *sum, "{id}");
    }
}

#[test]
fn sdk_ingest_captures_replay_and_query_back() {
    let server = Server::start_temp();
    let mut totals = BTreeMap::new();
    for client in ["go-pyroscope", "nodejs-pyroscope", "rust-pyroscope-legacy"] {
        replay(&server, client, &mut totals);
    }
    let mut by_service: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((service, id), sum) in &totals {
        by_service.entry(service).or_default().push(id.clone());
        assert_eq!(server.flame_total(id, &format!("{{service_name=\"{service}\"}}")), *sum, "{service} {id}");
    }
    for (service, mut ids) in by_service {
        ids.sort();
        assert_eq!(server.profile_types_of(&format!("{{service_name=\"{service}\"}}")), ids, "{service}");
    }
    // Name labels arrive as series labels; `__session_id__` does not.
    let (status, body) = server.connect_json(
        "/querier.v1.QuerierService/LabelNames",
        serde_json::json!({"matchers": ["{service_name=\"go-capture-app\"}"],
                           "start": now_ns() / 1_000_000 - 3_600_000, "end": now_ns() / 1_000_000 + 60_000}),
    );
    assert_eq!(status, 200);
    let names: Vec<&str> = body["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for want in ["env", "pyroscope_spy", "region", "work"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(!names.contains(&"__session_id__"), "{names:?}");
}

/// A legacy error body: JSON `{"code","message"}` and a newline.
fn assert_legacy_error(
    reply: (u16, std::collections::HashMap<String, String>, Vec<u8>),
    status: u16,
    code: &str,
    needle: &str,
) {
    let (got, headers, body) = reply;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(got, status, "{text}");
    assert_eq!(headers.get("content-type").map(String::as_str), Some("application/json"));
    assert!(text.ends_with('\n'), "{text:?}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["code"], code, "{text}");
    assert!(json["message"].as_str().unwrap().contains(needle), "{text} lacks {needle:?}");
}

#[test]
fn formats_statuses_and_error_bodies() {
    let server = Server::start_temp();
    let ok = |target: &str, content_type: &str, body: &[u8]| {
        let (status, _, reply) = server.post(target, content_type, body.to_vec(), &[]);
        assert_eq!(status, 200, "{target}: {}", String::from_utf8_lossy(&reply));
    };
    // Every text format, and the alias path.
    ok("/ingest?name=folded.cpu%7Bk%3Dv+w%7D", "text/plain", b"a;b 2\na;c 1");
    ok("/pyroscope/ingest?name=lines.alloc_objects&format=lines", "", b"a;b\na;b\na;c\n");
    let tree = [&[4u8][..], b"root", &[0, 1, 1], b"a", &[5, 0]].concat();
    ok("/ingest?name=tree.goroutines", "binary/octet-stream+tree", &tree);
    let trie = [&[0u8, 0, 1, 4][..], b"x;y;", &[0, 1, 1], b"z", &[3, 0]].concat();
    ok("/ingest?name=trie.cpu&format=trie&sampleRate=0", "", &trie);
    let speedscope = testdata("speedscope/pyroscope/two-sampled.speedscope.json");
    ok("/ingest?name=scope&format=speedscope", "application/json", &speedscope);
    let totals = [
        ("process_cpu:cpu:nanoseconds:cpu:nanoseconds", "folded", 30_000_000),
        ("memory:alloc_objects:count::", "lines", 3),
        ("goroutine:goroutines:count::", "tree", 5),
        ("process_cpu:samples:count::", "trie", 3),
        ("wall:wall:nanoseconds:cpu:nanoseconds", "scope", 2 * 1_400 * 10_000_000),
    ];
    for (id, service, total) in totals {
        assert_eq!(server.flame_total(id, &format!("{{service_name=\"{service}\"}}")), total, "{service}");
    }
    assert_eq!(server.flame_total("process_cpu:cpu:nanoseconds:cpu:nanoseconds", "{k=\"v w\"}"), 30_000_000);

    let post = |target: &str, content_type: &str, body: &[u8]| server.post(target, content_type, body.to_vec(), &[]);
    assert_legacy_error(post("/ingest?name=", "", b"a 1"), 400, "invalid_argument", "name: service name is required");
    assert_legacy_error(
        post("/ingest?name=com.example.app", "", b"a 1"),
        400,
        "invalid_argument",
        "unknown profile type: app",
    );
    assert_legacy_error(post("/ingest?name=app.cpu", "", b"a;b x"), 422, "unknown", "strconv.Atoi");
    assert_legacy_error(
        post("/ingest?name=app&format=pprof", "", b"junk"),
        422,
        "unknown",
        "parsing IngestInput-pprof",
    );
    assert_legacy_error(post("/ingest?name=app&format=jfr", "", b"not a recording"), 422, "unknown", "jfr");
    assert_legacy_error(
        post("/ingest?name=app&format=jfr", "", &kiln_tests::fixtures::gzip(b"FLR\0")),
        422,
        "unknown",
        "chunk magic",
    );
    let cpu = append_time(&testdata("pprof/pyroscope/cpu.pb.gz"), now_ns());
    let form = [
        &b"--B\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\r\n"[..],
        &cpu,
        b"\r\n--B\r\nContent-Disposition: form-data; name=\"prev_profile\"; filename=\"p\"\r\n\r\n",
        &cpu,
        b"\r\n--B--\r\n",
    ]
    .concat();
    let multipart = "multipart/form-data; boundary=B";
    assert_legacy_error(post("/ingest?name=app", multipart, &form), 422, "unknown", "unsupported client version");
    let (status, _, _) = server.get("/ingest?name=app");
    assert_eq!(status, 405);
}
