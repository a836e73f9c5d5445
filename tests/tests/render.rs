//! The legacy HTTP read API against the real server: `/pyroscope/render`
//! (JSON and DOT), `/pyroscope/render-diff`, `/pyroscope/label-values`, and
//! the seed document's curl examples run as written.

use std::io::Write;
use std::process::{Command, Stdio};

use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, now_ns, sample_type_sums, testdata, with_time};
use serde_json::{Value, json};

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const HEAP: &str = "memory:inuse_space:bytes:space:bytes";

/// A server holding the Go CPU profile for services `pyroscope` (5 minutes
/// ago) and `worker` (10 minutes ago), and the Go heap profile for `pyroscope`.
/// Returns the server, the CPU profile's cpu total and the push time (ms).
fn server_with_profiles() -> (Server, i64, i64) {
    let server = Server::start_temp();
    let now = now_ns();
    let at = now - 300_000_000_000;
    let cpu = with_time(&testdata("pprof/pyroscope/cpu.pb.gz"), at);
    let total = sample_type_sums(&decode_pprof(&cpu))[1].2;
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "pyroscope"), ("region", "eu")], &cpu);
    let earlier = with_time(&testdata("pprof/pyroscope/cpu.pb.gz"), now - 600_000_000_000);
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "worker"), ("region", "us")], &earlier);
    let heap = with_time(&testdata("pprof/pyroscope/heap.pb.gz"), at);
    server.push_pprof(&[("__name__", "memory"), ("service_name", "pyroscope")], &heap);
    (server, total, at / 1_000_000)
}

fn get_json(server: &Server, path: &str) -> Value {
    let (status, headers, body) = server.get(path);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{path}: {text}");
    assert_eq!(headers["content-type"], "application/json", "{path}");
    assert!(text.ends_with('\n'), "{path}: Go's encoder ends with a newline");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

fn sum(samples: &Value) -> i64 {
    samples.as_array().expect("samples array").iter().map(|s| s.as_i64().unwrap()).sum()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Renders `query` over `from`/`until` and returns the JSON body.
fn render(server: &Server, query: &str, from: &str, until: &str, extra: &str) -> Value {
    get_json(server, &format!("/pyroscope/render?query={}&from={from}&until={until}{extra}", encode(query)))
}

/// Runs Graphviz on `dot` and returns the SVG; fails if Graphviz is missing
/// or rejects the input.
fn graphviz_svg(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` must be installed (Debian package graphviz) to check DOT output");
    child.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dot rejected the graph: {}\n{dot}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn render_json_in_every_time_form() {
    let (server, total, at_ms) = server_with_profiles();
    let now_ms = now_ns() / 1_000_000;
    let from_s = (now_ms - 3_600_000) / 1000;
    let query = format!("{CPU}{{service_name=\"pyroscope\"}}");
    let forms = [
        ("now-1h".to_string(), "now".to_string()),
        ("now-60m".into(), "now".into()),
        ("now-60min".into(), "now%2B5m".into()),
        ("now-3600s".into(), String::new()),
        (from_s.to_string(), (now_ms / 1000 + 60).to_string()),
        ((from_s * 1000).to_string(), now_ms.to_string()),
        ((from_s * 1_000_000).to_string(), (now_ms * 1000).to_string()),
        ((from_s * 1_000_000_000).to_string(), (now_ms * 1_000_000).to_string()),
    ];
    for (from, until) in &forms {
        let v = render(&server, &query, from, until, "");
        let fb = &v["flamebearer"];
        assert_eq!(fb["numTicks"], total, "from={from} until={until}");
        assert_eq!(fb["names"][0], "total");
        assert_eq!(fb["levels"][0][1], total, "root total");
        assert!(fb["maxSelf"].as_i64().unwrap() > 0);
        assert_eq!(
            v["metadata"],
            json!({"format": "single", "spyName": "", "sampleRate": 1_000_000_000, "units": "samples", "name": "cpu"})
        );
        let t = &v["timeline"];
        assert_eq!(t["durationDelta"], 15, "one hour: the 15 s minimum step");
        assert_eq!(sum(&t["samples"]), total, "from={from} until={until}: {t}");
        // A profile counts in the first bucket timestamp at or after its time.
        let start = t["startTime"].as_i64().unwrap();
        let index = ((at_ms / 1000 - start) / 15) as usize;
        let filled: Vec<usize> = t["samples"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, v)| v != &&json!(0))
            .map(|(i, _)| i)
            .collect();
        assert!(filled.len() == 1 && (index..=index + 1).contains(&filled[0]), "the profile's own bucket: {filled:?}");
        assert_eq!((&v["groups"], &v["heatmap"], &v["version"]), (&Value::Null, &Value::Null, &json!(1)));
    }

    // YYYYMMDD is midnight UTC of that day: the profile is in range if it was
    // pushed after midnight.
    let day_ms = now_ms / 86_400_000 * 86_400_000;
    let days = now_ms / 86_400_000;
    let (y, m, d) = civil(days);
    let v = render(&server, &query, &format!("{y:04}{m:02}{d:02}"), "now", "");
    assert_eq!(v["flamebearer"]["numTicks"], if at_ms >= day_ms { total } else { 0 });

    // A longer range gives a coarser step: 6 hours is still 15 s, 24 h is 1 min.
    let v = render(&server, &query, "now-24h", "now", "");
    assert_eq!(v["timeline"]["durationDelta"], 60);
    assert_eq!(sum(&v["timeline"]["samples"]), total);
}

/// Days since the epoch to (year, month, day).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[test]
fn render_max_nodes_and_group_by() {
    let (server, total, _) = server_with_profiles();
    let all = format!("{CPU}{{}}");
    for extra in ["&maxNodes=3", "&max-nodes=3", "&max-nodes=100&maxNodes=3"] {
        let v = render(&server, &all, "now-1h", "now", extra);
        let fb = &v["flamebearer"];
        assert_eq!(fb["numTicks"], 2 * total, "{extra}: truncation keeps the total");
        let nodes: usize = fb["levels"].as_array().unwrap().iter().map(|l| l.as_array().unwrap().len() / 4).sum();
        assert!(nodes <= 1 + 3 + 3, "{extra}: root, 3 kept nodes and at most one other per level: {nodes}");
        assert!(fb["names"].as_array().unwrap().contains(&json!("other")), "{extra}");
    }
    let untruncated = render(&server, &all, "now-1h", "now", "&maxNodes=abc");
    assert!(untruncated["flamebearer"]["names"].as_array().unwrap().len() > 10, "non-numeric: server default");

    let v = render(&server, &all, "now-1h", "now", "&groupBy=service_name&groupBy=region");
    let groups = v["groups"].as_object().unwrap();
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["pyroscope", "worker"], "keyed by the first groupBy");
    for g in groups.values() {
        assert_eq!(sum(&g["samples"]), total);
        assert_eq!(g["durationDelta"], 15);
    }
    assert_eq!(sum(&v["timeline"]["samples"]), 0, "several series: the top timeline stays empty");
    let v = render(&server, &all, "now-1h", "now", "&groupBy=nonexistent");
    assert_eq!(sum(&v["groups"]["*"]["samples"]), 2 * total);
    assert_eq!(sum(&v["timeline"]["samples"]), 2 * total, "one series fills the top timeline");
}

#[test]
fn render_dot_is_accepted_by_graphviz() {
    let (server, _, _) = server_with_profiles();
    for (query, extra) in [(CPU, ""), (HEAP, ""), (HEAP, "&maxNodes=20"), (HEAP, "&maxNodes=600")] {
        let path = format!("/pyroscope/render?query={}&from=now-1h&format=dot{extra}", encode(&format!("{query}{{}}")));
        let (status, headers, body) = server.get(&path);
        let dot = String::from_utf8(body).unwrap();
        assert_eq!(status, 200, "{path}: {dot}");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(dot.starts_with("digraph "), "{dot}");
        let svg = graphviz_svg(&dot);
        assert!(svg.contains("<svg"), "{path}");
        let nodes = dot.lines().filter(|l| l.starts_with('N') && !l.contains(" -> ")).count();
        let limit = if extra.is_empty() { 100 } else { extra[10..].parse().unwrap() };
        assert!(nodes > 0 && nodes <= limit, "{path}: {nodes} nodes");
    }
    let (status, headers, body) = server.get(&format!(
        "/pyroscope/render?query={}&from=now-1h&format=dot",
        encode(&format!("{CPU}{{service_name=\"none\"}}"))
    ));
    assert_eq!((status, headers["content-type"].as_str(), body.len()), (200, "text/plain", 0), "no data: empty body");

    // The Connect method's DOT format answers the same graph in `dot`.
    let now = now_ns() / 1_000_000;
    let (status, reply) = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": HEAP, "labelSelector": "{}", "start": now - 3_600_000, "end": now, "format": "PROFILE_FORMAT_DOT", "maxNodes": 30}),
    );
    assert_eq!(status, 200, "{reply}");
    let dot = reply["dot"].as_str().expect("dot field");
    assert!(graphviz_svg(dot).contains("<svg"));
    assert!(dot.contains("Showing top 30 nodes out of"), "{dot}");
}

#[test]
fn render_diff_and_label_values() {
    let (server, total, _) = server_with_profiles();
    let q = encode(&format!("{CPU}{{}}"));
    let v = get_json(
        &server,
        &format!(
            "/pyroscope/render-diff?leftQuery={q}&leftFrom=now-1h&leftUntil=now&rightQuery={q}&rightFrom=now-1h&rightUntil=now&maxNodes=8"
        ),
    );
    assert_eq!(v["metadata"]["format"], "double");
    assert_eq!((v["leftTicks"].as_i64(), v["rightTicks"].as_i64()), (Some(2 * total), Some(2 * total)));
    assert_eq!(v["flamebearer"]["numTicks"], 4 * total);
    assert_eq!((&v["timeline"], &v["groups"]), (&Value::Null, &Value::Null));
    for level in v["flamebearer"]["levels"].as_array().unwrap() {
        for row in level.as_array().unwrap().chunks(7) {
            assert_eq!(row[..3], row[3..6], "left == right");
        }
    }
    let heap = encode(&format!("{HEAP}{{}}"));
    let (status, _, body) =
        server.get(&format!("/pyroscope/render-diff?leftQuery={q}&leftFrom=now-1h&rightQuery={heap}&rightFrom=now-1h"));
    assert_eq!(status, 400);
    assert_eq!(body, b"{\"code\":\"invalid_argument\",\"message\":\"profile types must match\"}\n");

    assert_eq!(get_json(&server, "/pyroscope/label-values?label=service_name"), json!(["pyroscope", "worker"]));
    assert_eq!(get_json(&server, "/pyroscope/label-values?label=region"), json!(["eu", "us"]));
    let types = get_json(&server, "/pyroscope/label-values?label=__name__");
    assert!(types.as_array().unwrap().contains(&json!(CPU)), "{types}");
    assert!(types.as_array().unwrap().contains(&json!(HEAP)), "{types}");
}

#[test]
fn errors_methods_and_absent_routes() {
    let server = Server::start_temp();
    let cases = [
        ("/pyroscope/render?from=now-1h", "\"query\" is required"),
        ("/pyroscope/render?query=%7Bservice_name%3D%22x%22%7D", "\"query\" must contain a profile-type selection"),
        ("/pyroscope/render?query=app_cpu%7B%7D", "failed to parse \"query\""),
        (
            "/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7B%7D&from=0",
            "missing time range in the query",
        ),
        (
            "/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7B%7D&from=now&until=now-1h",
            "query start time is after end time",
        ),
        ("/pyroscope/label-values", "label parameter is required"),
        (
            "/pyroscope/render-diff?leftQuery=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7B%7D",
            "\"rightQuery\" is required",
        ),
    ];
    for (path, message) in cases {
        let (status, headers, body) = server.get(path);
        assert_eq!(status, 400, "{path}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let expected = format!("{}\n", json!({"code": "invalid_argument", "message": message}));
        assert_eq!(String::from_utf8(body).unwrap(), expected, "{path}");
    }
    let (status, _, body) =
        server.get("/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7Bx%7D&from=now-1h");
    assert_eq!(status, 400);
    assert!(String::from_utf8(body).unwrap().contains("failed to parse \\\"query\\\": "));

    for path in ["/pyroscope/render", "/pyroscope/render-diff", "/pyroscope/label-values"] {
        let (status, _, _) = server.post(path, "application/json", b"{}".to_vec(), &[]);
        assert_eq!(status, 405, "{path}");
    }
    for path in ["/pyroscope/labels", "/api/apps", "/render?query=x"] {
        assert_eq!(server.get(path).0, 404, "{path}");
    }
}

/// The seed document's two curl examples for `/pyroscope/render`, run with
/// the `curl` binary exactly as written apart from the server address.
#[test]
fn seed_curl_examples() {
    let (server, total, _) = server_with_profiles();
    let base = format!("http://{}", server.addr);
    let examples: [Vec<String>; 2] = [
        vec![format!(
            "{base}/pyroscope/render?query=process_cpu%3Acpu%3Ananoseconds%3Acpu%3Ananoseconds%7Bservice_name%3D%22pyroscope%22%7D&from=now-1h"
        )],
        vec![
            "--get".into(),
            "--data-urlencode".into(),
            "query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"pyroscope\"}".into(),
            "--data-urlencode".into(),
            "from=now-1h".into(),
            format!("{base}/pyroscope/render"),
        ],
    ];
    for args in examples {
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--write-out", "\n%{http_code}"])
            .args(&args)
            .output()
            .expect("curl must be installed");
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        assert_eq!(code, "200", "curl {args:?}: {body}");
        let v: Value = serde_json::from_str(body).unwrap();
        // The documented FlamebearerProfileV1 shape.
        for field in ["flamebearer", "metadata", "timeline", "groups"] {
            assert!(v.as_object().unwrap().contains_key(field), "{field}");
        }
        assert_eq!(v["flamebearer"]["numTicks"], total);
        for field in ["names", "levels", "numTicks", "maxSelf"] {
            assert!(!v["flamebearer"][field].is_null(), "{field}");
        }
        assert_eq!(sum(&v["timeline"]["samples"]), total);
        assert!(v["timeline"]["startTime"].is_i64() && v["timeline"]["durationDelta"].is_i64());
    }
}
