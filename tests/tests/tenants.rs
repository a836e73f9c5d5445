//! Multi-tenancy: in multi-tenant mode `X-Scope-OrgID` is required and
//! validated, and no endpoint lets one tenant see another's data; in the
//! default single-tenant mode the header is ignored.

use kiln_proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use kiln_proto::types::v1::LabelPair;
use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, now_ns, sample_type_sums, testdata, with_time};
use prost::Message;
use serde_json::{Value, json};

const GO_CPU: &str = "pprof/pyroscope/cpu.pb.gz";
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const Q: &str = "/querier.v1.QuerierService/";

/// xorshift64*: reproducible from the seed the test prints.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed =
            std::env::var("KILN_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| now_ns() as u64 | 1);
        eprintln!("tenants: KILN_TEST_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random valid tenant ID: 1 to 150 of the allowed bytes, never `.`/`..`.
fn tenant_id(rng: &mut Rng) -> String {
    const ALLOWED: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()";
    let len = if rng.below(4) == 0 { 150 } else { 1 + rng.below(40) };
    let id: String = (0..len).map(|_| char::from(ALLOWED[rng.below(ALLOWED.len())])).collect();
    if id == "." || id == ".." { format!("{id}x") } else { id }
}

/// Any spelling of the header name: HTTP header names are case-insensitive.
fn header_name(rng: &mut Rng) -> &'static str {
    ["X-Scope-OrgID", "x-scope-orgid", "X-SCOPE-ORGID", "x-Scope-OrgId"][rng.below(4)]
}

fn push(server: &Server, org_id: &str, labels: &[(&str, &str)], pprof: &[u8], header: &str) -> (u16, Value) {
    push_with(server, &[(header, org_id)], labels, pprof)
}

fn push_with(server: &Server, headers: &[(&str, &str)], labels: &[(&str, &str)], pprof: &[u8]) -> (u16, Value) {
    let req = PushRequest {
        series: vec![RawProfileSeries {
            labels: labels.iter().map(|(n, v)| LabelPair { name: (*n).into(), value: (*v).into() }).collect(),
            samples: vec![RawSample { raw_profile: pprof.to_vec(), id: String::new() }],
            annotations: vec![],
        }],
    };
    let (status, _, body) =
        server.post("/push.v1.PusherService/Push", "application/proto", req.encode_to_vec(), headers);
    let body = if status == 200 { json!({}) } else { serde_json::from_slice(&body).unwrap() };
    (status, body)
}

fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_i64().unwrap(),
        Value::Null => 0,
        other => panic!("not an integer: {other}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default();
    out.sort();
    out
}

/// One tenant's data as pushed: `pushes` CPU profiles under the shared
/// `process_cpu` name, one more under a name of its own, and a label name
/// and service name no other tenant has.
struct Tenant {
    id: String,
    pushes: i64,
    name: String,
    service: String,
    marker: String,
}

/// What one tenant sees through every Connect query endpoint.
#[derive(Debug, PartialEq)]
struct View {
    profile_types: Vec<String>,
    label_names: Vec<String>,
    services: Vec<String>,
    series_services: Vec<String>,
    /// Totals of the shared profile type, per endpoint.
    stacktraces: i64,
    merged_profile: i64,
    series_total: i64,
    diff_left: i64,
    /// Flame graph totals of each tenant's private profile type.
    private: Vec<i64>,
}

fn view(server: &Server, org_id: &str, header: &str, all: &[Tenant]) -> View {
    let end = now_ns() / 1_000_000 + 1000;
    let start = end - 3_600_000;
    let call = |method: &str, body: Value| {
        let (status, reply) = server.connect_json_with(&format!("{Q}{method}"), body, &[(header, org_id)]);
        assert_eq!(status, 200, "{method} as {org_id:?}: {reply}");
        reply
    };
    let range = json!({"start": start, "end": end});
    let select = |id: &str| json!({"profileTypeID": id, "labelSelector": "{}", "start": start, "end": end});

    let types = call("ProfileTypes", range.clone());
    let profile_types = types["profileTypes"]
        .as_array()
        .map(|a| a.iter().map(|t| t["ID"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let label_names = strings(&call("LabelNames", range.clone())["names"]);
    let services = strings(&call("LabelValues", json!({"name": "service_name", "start": start, "end": end}))["names"]);
    let sets = call("Series", json!({"matchers": ["{}"], "start": start, "end": end}));
    let mut series_services: Vec<String> = sets["labelsSet"]
        .as_array()
        .map(|a| {
            a.iter()
                .flat_map(|set| set["labels"].as_array().unwrap().iter())
                .filter(|l| l["name"] == "service_name")
                .map(|l| l["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    series_services.sort();
    series_services.dedup();

    let stacktraces = int(&call("SelectMergeStacktraces", select(CPU))["flamegraph"]["total"]);
    let merged = call("SelectMergeProfile", select(CPU));
    let merged_profile = merged["sample"]
        .as_array()
        .map(|samples| samples.iter().map(|s| int(&s["value"][0])).sum())
        .unwrap_or_default();
    let mut series_request = select(CPU);
    series_request["step"] = json!(3600.0);
    let series = call("SelectSeries", series_request);
    let series_total = series["series"]
        .as_array()
        .map(|all| {
            all.iter().flat_map(|s| s["points"].as_array().unwrap()).map(|p| p["value"].as_f64().unwrap() as i64).sum()
        })
        .unwrap_or_default();
    let private: Vec<i64> = all
        .iter()
        .map(|t| int(&call("SelectMergeStacktraces", select(&private_type(t)))["flamegraph"]["total"]))
        .collect();
    // Diff of the shared type against each tenant's private one: the right
    // side must only ever see the caller's own.
    let mut diff_left = None;
    for (t, &total) in all.iter().zip(&private) {
        let diff = call("Diff", json!({"left": select(CPU), "right": select(&private_type(t))}));
        let left = int(&diff["flamegraph"]["leftTicks"]);
        assert_eq!(*diff_left.get_or_insert(left), left);
        assert_eq!(int(&diff["flamegraph"]["rightTicks"]), total, "Diff right side of {:?} as {org_id:?}", t.id);
    }
    View {
        profile_types,
        label_names,
        services,
        series_services,
        stacktraces,
        merged_profile,
        series_total,
        diff_left: diff_left.unwrap_or_default(),
        private,
    }
}

fn private_type(t: &Tenant) -> String {
    CPU.replacen("process_cpu", &t.name, 1)
}

#[test]
fn no_endpoint_leaks_across_tenants() {
    let mut rng = Rng::seeded();
    let server = Server::start_temp_with(&[("multitenancy_enabled", "true")]);
    let pprof = with_time(&testdata(GO_CPU), now_ns() - 2_000_000_000);
    let cpu_total = sample_type_sums(&decode_pprof(&pprof))[1].2;
    assert!(cpu_total > 0);

    let mut tenants: Vec<Tenant> = Vec::new();
    while tenants.len() < 4 {
        let id = tenant_id(&mut rng);
        if tenants.iter().any(|t| t.id == id) {
            continue;
        }
        let i = tenants.len();
        tenants.push(Tenant {
            id,
            pushes: 1 + rng.below(3) as i64,
            name: format!("private{i}_{}", rng.next() % 1000),
            service: format!("svc-{i}-{}", rng.next() % 1000),
            marker: format!("only_tenant_{i}"),
        });
    }
    for t in &tenants {
        let labels = |name: &str| -> Vec<(String, String)> {
            vec![
                ("__name__".into(), name.into()),
                ("service_name".into(), t.service.clone()),
                (t.marker.clone(), "yes".into()),
            ]
        };
        let shared = labels("process_cpu");
        let own = labels(&t.name);
        let pairs = |l: &[(String, String)]| l.iter().map(|(n, v)| (n.clone(), v.clone())).collect::<Vec<_>>();
        for _ in 0..t.pushes {
            let l = pairs(&shared);
            let l: Vec<(&str, &str)> = l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let (status, body) = push(&server, &t.id, &l, &pprof, header_name(&mut rng));
            assert_eq!(status, 200, "push as {:?}: {body}", t.id);
        }
        let l: Vec<(&str, &str)> = own.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let (status, body) = push(&server, &t.id, &l, &pprof, header_name(&mut rng));
        assert_eq!(status, 200, "push as {:?}: {body}", t.id);
    }

    let cpu_types = |name: &str| -> Vec<String> {
        ["cpu:nanoseconds:cpu:nanoseconds", "samples:count:cpu:nanoseconds"]
            .iter()
            .map(|t| format!("{name}:{t}"))
            .collect()
    };
    for (i, t) in tenants.iter().enumerate() {
        let mut profile_types = [cpu_types("process_cpu"), cpu_types(&t.name)].concat();
        profile_types.sort();
        let mut label_names: Vec<String> = ["__name__", "service_name", &t.marker].map(String::from).to_vec();
        label_names.sort();
        let shared = t.pushes * cpu_total;
        let expected = View {
            profile_types,
            label_names,
            services: vec![t.service.clone()],
            series_services: vec![t.service.clone()],
            stacktraces: shared,
            merged_profile: shared,
            series_total: shared,
            diff_left: shared,
            private: (0..tenants.len()).map(|j| if i == j { cpu_total } else { 0 }).collect(),
        };
        let mut seen = view(&server, &t.id, header_name(&mut rng), &tenants);
        // Pyroscope lists only label names that are Prometheus identifiers
        // and may add its own; compare the user-visible ones.
        seen.label_names.retain(|n| !n.starts_with("__") || n == "__name__");
        assert_eq!(seen, expected, "tenant {:?}", t.id);
        // Metadata after `:` does not change the tenant.
        assert_eq!(view(&server, &format!("{}:source=test", t.id), "X-Scope-OrgID", &tenants).stacktraces, shared);
    }

    // A tenant that pushed nothing sees nothing.
    let stranger = loop {
        let id = tenant_id(&mut rng);
        if tenants.iter().all(|t| t.id != id) {
            break id;
        }
    };
    let empty = view(&server, &stranger, "X-Scope-OrgID", &tenants);
    assert_eq!(
        empty,
        View {
            profile_types: vec![],
            label_names: vec![],
            services: vec![],
            series_services: vec![],
            stacktraces: 0,
            merged_profile: 0,
            series_total: 0,
            diff_left: 0,
            private: vec![0; tenants.len()],
        }
    );
}

#[test]
fn multi_tenant_mode_requires_a_valid_tenant() {
    let server = Server::start_temp_with(&[("multitenancy_enabled", "true")]);
    let pprof = with_time(&testdata(GO_CPU), now_ns() - 1_000_000_000);
    let labels = [("__name__", "process_cpu"), ("service_name", "auth")];
    let now = now_ns() / 1_000_000;
    let range = json!({"start": now - 3_600_000, "end": now + 1000});
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "no org id"),
        (&[("X-Scope-OrgID", "")], "no org id"),
        (&[("X-Scope-OrgID", "a/b")], "tenant ID 'a/b' contains unsupported character '/'"),
        (&[("X-Scope-OrgID", "with space")], "tenant ID 'with space' contains unsupported character ' '"),
        (&[("X-Scope-OrgID", ".")], "tenant ID is '.' or '..'"),
        (&[("X-Scope-OrgID", "..")], "tenant ID is '.' or '..'"),
        (&[("X-Scope-OrgID", &"x".repeat(151))], "tenant ID is too long: max 150 characters"),
        (&[("X-Scope-OrgID", "a|b")], "multiple org IDs present"),
    ];
    for (headers, message) in cases {
        let (status, body) = push_with(&server, headers, &labels, &pprof);
        assert_eq!((status, &body), (401, &json!({"code": "unauthenticated", "message": message})), "{headers:?}");
        let (status, body) = server.connect_json_with(&format!("{Q}LabelNames"), range.clone(), headers);
        assert_eq!((status, &body), (401, &json!({"code": "unauthenticated", "message": message})), "{headers:?}");
    }
    // The same tenant repeated is one tenant, and nothing above was stored.
    let (status, body) = push(&server, "a|a", &labels, &pprof, "X-Scope-OrgID");
    assert_eq!(status, 200, "{body}");
    let services = |org_id: &str| {
        let body = json!({"name": "service_name", "start": now - 3_600_000, "end": now + 1000});
        let (status, names) = server.connect_json_with(&format!("{Q}LabelValues"), body, &[("X-Scope-OrgID", org_id)]);
        assert_eq!(status, 200, "{names}");
        strings(&names["names"])
    };
    assert_eq!(services("a"), ["auth"]);
    assert!(services("b").is_empty());
}

#[test]
fn single_tenant_mode_ignores_the_header() {
    let server = Server::start_temp();
    let pprof = with_time(&testdata(GO_CPU), now_ns() - 1_000_000_000);
    let labels = [("__name__", "process_cpu"), ("service_name", "single")];
    // Even a header that would be invalid in multi-tenant mode.
    for org_id in ["team-a", "a/b", "a|b"] {
        let (status, body) = push(&server, org_id, &labels, &pprof, "X-Scope-OrgID");
        assert_eq!(status, 200, "{org_id}: {body}");
    }
    let now = now_ns() / 1_000_000;
    let query = json!({"profileTypeID": CPU, "labelSelector": "{}", "start": now - 3_600_000, "end": now + 1000});
    let cpu_total = sample_type_sums(&decode_pprof(&pprof))[1].2;
    for headers in [&[][..], &[("X-Scope-OrgID", "team-b")][..]] {
        let (status, body) = server.connect_json_with(&format!("{Q}SelectMergeStacktraces"), query.clone(), headers);
        assert_eq!(status, 200, "{body}");
        assert_eq!(int(&body["flamegraph"]["total"]), 3 * cpu_total, "everything is one tenant");
    }
}
