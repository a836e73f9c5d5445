//! Conformance against the shared test data (`../shared/testdata/jfr`,
//! MANIFEST.md): Pyroscope's query goldens, jfr-parser's collapsed outputs,
//! the JDK recording a real agent uploaded, and malformed variants. Tests
//! run on the host, so they read files with std.

extern crate std;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::*;
use crate::pprof::{self as pp, Profile};
use crate::testdata::read;

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    if gzip::is_gzip(bytes) { gzip::decompress(bytes, 1 << 30).unwrap() } else { bytes.to_vec() }
}

/// Large enough for every recording here (the biggest inflates to 12 MB).
fn options() -> Options {
    Options {
        from_nanos: 1_706_241_880_000_000_000,
        until_nanos: 1_706_241_890_000_000_000,
        max_decompressed_size: 64 << 20,
        ..Options::default()
    }
}

fn convert(input: &str, labels: Option<&str>) -> Vec<JfrProfile> {
    let labels = labels.map(|l| read(&format!("jfr/{l}")));
    profiles(&read(&format!("jfr/{input}")), labels.as_deref(), &options()).unwrap_or_else(|e| panic!("{input}: {e}"))
}

fn string(p: &Profile, i: i64) -> &str {
    &p.string_table[i as usize]
}

/// The samples of `p` carrying every label of `selector`.
fn select(p: &Profile, selector: &[(&str, &str)]) -> Profile {
    let mut out = p.clone();
    out.sample.retain(|s| {
        selector.iter().all(|(k, v)| s.label.iter().any(|l| string(p, l.key) == *k && string(p, l.str) == *v))
    });
    out
}

/// The inputs with labels parts (MANIFEST.md).
fn labels_for(input: &str) -> Option<&'static str> {
    match input {
        "dump1.jfr.gz" => Some("dump1.labels.pb.gz"),
        "dump2.jfr.gz" => Some("dump2.labels.pb.gz"),
        "new_spancontext.jfr.gz" => Some("new_spancontext.labels.gz"),
        _ => None,
    }
}

/// The label sets behind the golden files' hashes (MANIFEST.md, "File names").
fn selector_for(hash: &str) -> Vec<(&'static str, &'static str)> {
    let thread = match hash {
        "17241709254077376921" => return Vec::new(),
        "2539015855607244867" => "pool-2-thread-1",
        "6511396920643364271" => "pool-2-thread-2",
        "5571933481434853072" => "pool-2-thread-3",
        "10784330302778997279" => "pool-2-thread-4",
        "16370823494798218517" => "pool-2-thread-5",
        "14685508092873724845" => "pool-2-thread-6",
        "15666661103234080825" => "pool-2-thread-7",
        "302387572117411911" => "pool-2-thread-8",
        other => panic!("unknown label hash {other}"),
    };
    alloc::vec![("thread_name", thread)]
}

/// Pyroscope's integration-test goldens: for each `(input, profile type,
/// label set)`, the merged stacks of that type and label set.
#[test]
fn pyroscope_goldens() {
    let dir = crate::testdata::dir().join("jfr/expected");
    let mut goldens: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pb.gz"))
        .collect();
    goldens.sort();
    assert!(goldens.len() >= 50, "expected Pyroscope's goldens in {}", dir.display());
    let mut converted: BTreeMap<String, Vec<JfrProfile>> = BTreeMap::new();
    for golden in &goldens {
        let (input, rest) = golden.split_once(".jfr.gz.").unwrap();
        let input = format!("{input}.jfr.gz");
        let hash = rest.trim_end_matches(".pb.gz").rsplit('.').next().unwrap();
        let expected = pp::decode(&read(&format!("jfr/expected/{golden}")), &pp::Limits::default()).unwrap();
        let (st, period) = (&expected.sample_type[0], expected.period_type.as_ref().unwrap());
        let want_type = (string(&expected, st.r#type), string(&expected, st.unit));
        let want_period = (string(&expected, period.r#type), string(&expected, period.unit));

        let ours = converted.entry(input.clone()).or_insert_with(|| convert(&input, labels_for(&input)));
        let mut found = None;
        for jp in ours.iter() {
            let p = &jp.profile;
            let Some(pt) = &p.period_type else { continue };
            if (string(p, pt.r#type), string(p, pt.unit)) != want_period {
                continue;
            }
            for (column, t) in p.sample_type.iter().enumerate() {
                if (string(p, t.r#type), string(p, t.unit)) == want_type {
                    found = Some((p, column));
                }
            }
        }
        let (p, column) = found.unwrap_or_else(|| panic!("{golden}: no profile of type {want_type:?}"));
        let got = pp::collapsed(&select(p, &selector_for(hash)), column);
        let want = pp::collapsed(&expected, 0);
        assert_eq!(got.len(), want.len(), "{golden}: stack count");
        assert_eq!(got, want, "{golden}");
    }
}

/// Every recording jfr-parser's tests convert, with the labels part they use.
const JFR_PARSER_INPUTS: &[&str] = &[
    "example",
    "async-profiler",
    "goland-multichunk",
    "FastSlow_2024_01_16_180855",
    "cortex-dev-01__kafka-0__cpu__0",
    "cortex-dev-01__kafka-0__cpu__1",
    "cortex-dev-01__kafka-0__cpu__2",
    "cortex-dev-01__kafka-0__cpu__3",
    "cortex-dev-01__kafka-0__cpu_lock0_alloc0__0",
    "cortex-dev-01__kafka-0__cpu_lock_alloc__0",
    "cortex-dev-01__kafka-0__cpu_lock_alloc__1",
    "cortex-dev-01__kafka-0__cpu_lock_alloc__2",
    "cortex-dev-01__kafka-0__cpu_lock_alloc__3",
    "dump1",
    "dump2",
    "dd-trace-java",
    "cpool-uint64-constant-index",
    "event-with-type-zero",
    "object-allocation-sample",
    "uint64-ref-id",
    "parse_failure_repro1",
    "wall_tick_sample",
    "nativemem",
    "new_spancontext",
    "wall",
];

/// jfr-parser's name of a profile: `<metric>_<type>__<unit>[+<type>__<unit>]`.
fn parser_name(jp: &JfrProfile) -> String {
    let p = &jp.profile;
    let types: Vec<String> =
        p.sample_type.iter().map(|t| format!("{}__{}", string(p, t.r#type), string(p, t.unit))).collect();
    format!("{}_{}", jp.labels.get("__name__").unwrap(), types.join("+"))
}

/// jfr-parser's collapsed rendering: `frame:line;…` root first, all values.
fn collapsed_with_lines(p: &Profile) -> String {
    let functions: BTreeMap<u64, &str> = p.function.iter().map(|f| (f.id, string(p, f.name))).collect();
    let locations: BTreeMap<u64, &pp::Location> = p.location.iter().map(|l| (l.id, l)).collect();
    let mut stacks: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in &p.sample {
        let frames: Vec<String> = s
            .location_id
            .iter()
            .rev()
            .flat_map(|id| &locations[id].line)
            .map(|l| format!("{}:{}", functions[&l.function_id], l.line))
            .collect();
        let sum = stacks.entry(frames.join(";")).or_insert_with(|| alloc::vec![0; s.value.len()]);
        sum.iter_mut().zip(&s.value).for_each(|(a, b)| *a += b);
    }
    let lines: Vec<String> = stacks
        .into_iter()
        .filter(|(_, v)| v.iter().any(|&x| x != 0))
        .map(|(k, v)| format!("{k} [{}]", v.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")))
        .collect();
    lines.join("\n")
}

#[test]
fn jfr_parser_collapsed_outputs() {
    for input in JFR_PARSER_INPUTS {
        let file = format!("{input}.jfr.gz");
        let mut ours = convert(&file, labels_for(&file));
        ours.sort_by_key(parser_name);
        for (i, jp) in ours.iter().enumerate() {
            let name = parser_name(jp);
            let expected = format!("jfr/expected/jfr-parser/{input}_{i}_{name}_expected_collapsed.txt.gz");
            let want = String::from_utf8(gunzip(&read(&expected))).unwrap();
            let got = collapsed_with_lines(&jp.profile);
            if got != want {
                let (g, w): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
                let first = g.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
                panic!(
                    "{expected}: {} lines vs {} expected; first difference at line {first}:\n got: {:?}\nwant: {:?}",
                    g.len(),
                    w.len(),
                    g.get(first),
                    w.get(first)
                );
            }
        }
        assert!(!ours.is_empty(), "{input}: no profiles");
        let missing = format!("jfr/expected/jfr-parser/{input}_{}_", ours.len());
        let dir = crate::testdata::dir().join("jfr/expected/jfr-parser");
        let extra = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
        let extra: Vec<String> =
            extra.filter(|n| format!("jfr/expected/jfr-parser/{n}").starts_with(&missing)).collect();
        assert!(extra.is_empty(), "{input}: expected more profiles: {extra:?}");
    }
}

/// Events per type name, counted by walking the records of every chunk.
fn event_counts(data: &[u8]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    let mut pos = 0;
    while pos < data.len() {
        let header = Header::read(&data[pos..]).unwrap();
        let chunk = &data[pos..pos + header.size as usize];
        let types = Types::read(chunk, header.metadata_offset as usize).unwrap();
        let mut r = Reader::at(chunk, HEADER_SIZE as usize);
        while r.remaining() > 0 {
            let start = r.pos();
            let size = r.varlong().unwrap() as usize;
            let name = types.class(r.varlong().unwrap()).map_or(String::new(), |c| c.name.to_string());
            *counts.entry(name).or_default() += 1;
            r = Reader::at(chunk, start + size);
        }
        pos += chunk.len();
    }
    counts
}

/// The bytes of multipart part `name` (the captured requests' framing).
fn multipart_part<'a>(body: &'a [u8], name: &str) -> &'a [u8] {
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from).unwrap()
    };
    let boundary = &body[..find(body, b"\r\n", 0)];
    let header = find(body, format!("name=\"{name}\"").as_bytes(), 0);
    let start = find(body, b"\r\n\r\n", header) + 4;
    let end = find(body, boundary, start) - 2;
    &body[start..end]
}

fn total(profiles: &[JfrProfile], sample_type: &str) -> i64 {
    let mut sum = 0;
    for jp in profiles {
        let p = &jp.profile;
        for (column, t) in p.sample_type.iter().enumerate() {
            if string(p, t.r#type) == sample_type {
                sum += p.sample.iter().map(|s| s.value[column]).sum::<i64>();
            }
        }
    }
    sum
}

/// The JDK's own recorder, uploaded raw and as multipart with gzip and
/// labels: cpu, allocation and lock profiles whose totals are the events'.
#[test]
fn jdk_recording_from_the_java_agent() {
    let raw = read("clients/java-jfr/001-POST-ingest.body.bin");
    let counts = event_counts(&raw);
    let count = |name: &str| counts.get(name).copied().unwrap_or(0);
    assert!(count("jdk.ExecutionSample") > 0 && count("jdk.ObjectAllocationSample") > 0, "{counts:?}");

    let multipart = read("clients/java-jfr/002-POST-ingest.body.bin");
    let (jfr, labels) = (multipart_part(&multipart, "jfr"), multipart_part(&multipart, "labels"));
    assert!(gzip::is_gzip(jfr) && gzip::is_gzip(labels));
    let plain = read("clients/java-jfr/003-POST-ingest.body.bin");
    let uploads = [(&raw[..], None), (jfr, Some(labels)), (multipart_part(&plain, "jfr"), None)];
    for (jfr, labels) in uploads {
        let ours = profiles(jfr, labels, &options()).unwrap();
        let names: Vec<&str> = ours.iter().map(|p| p.labels.get("__name__").unwrap()).collect();
        for metric in ["process_cpu", "memory", "mutex", "block"] {
            assert!(names.contains(&metric), "no {metric} profile: {names:?}");
        }
        assert_eq!(total(&ours, "cpu"), 10_000_000 * count("jdk.ExecutionSample"));
        assert_eq!(total(&ours, "alloc_sample_objects"), count("jdk.ObjectAllocationSample"));
        assert_eq!(total(&ours, "alloc_in_new_tlab_objects"), count("jdk.ObjectAllocationInNewTLAB"));
        assert_eq!(total(&ours, "alloc_outside_tlab_objects"), count("jdk.ObjectAllocationOutsideTLAB"));
        assert_eq!(total(&ours, "contentions"), count("jdk.JavaMonitorEnter") + count("jdk.ThreadPark"));
        assert!(total(&ours, "alloc_sample_bytes") > 0 && total(&ours, "delay") > 0);
    }
}

/// async-profiler's context and span ids become sample labels.
#[test]
fn context_and_span_labels() {
    let ours = convert("new_spancontext.jfr.gz", Some("new_spancontext.labels.gz"));
    let p = &ours[0].profile;
    let labelled = p.sample.iter().find(|s| !s.label.is_empty()).expect("labelled samples");
    let labels: Vec<(&str, &str)> = labelled.label.iter().map(|l| (string(p, l.key), string(p, l.str))).collect();
    assert!(labels.contains(&("profile_id", "00000000000000ef")), "{labels:?}");
    assert!(labels.contains(&("span_name", "Fibonachi")), "{labels:?}");
    assert!(labels.iter().any(|(k, _)| k.starts_with("dyn")), "{labels:?}");
    assert_eq!(ours[0].labels.get("jfr_event"), Some("ctimer"));
}

fn err(jfr: &[u8]) -> String {
    match profiles(jfr, None, &options()) {
        Err(Error::InvalidArgument(msg)) => msg,
        other => panic!("expected invalid argument, got {other:?}"),
    }
}

fn set_u64(data: &mut [u8], at: usize, v: u64) {
    data[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn malformed_recordings_are_invalid_arguments() {
    let good = gunzip(&read("jfr/cortex-dev-01__kafka-0__cpu__0.jfr.gz"));
    assert!(profiles(&[], None, &options()).unwrap().is_empty());
    assert!(err(b"this is not a flight recording, just some text").contains("invalid chunk magic"));

    // Pyroscope's TestCorruptedJFR422: first byte zeroed.
    let mut corrupted = good.clone();
    corrupted[0] = 0;
    assert!(err(&corrupted).contains("invalid chunk magic"));

    let mut version = good.clone();
    version[5] = 9;
    assert!(err(&version).contains("unsupported version"));

    // A chunk claiming far more bytes than there are.
    let mut huge = good.clone();
    set_u64(&mut huge, 8, 1 << 60);
    assert!(err(&huge).contains("exceeds"), "{}", err(&huge));

    // Truncated anywhere, with the header's size left as is or made to fit.
    for cut in (1..good.len()).step_by(997).chain([good.len() - 1]) {
        let truncated = &good[..cut];
        let _ = err(truncated);
        if cut > HEADER_SIZE as usize {
            let mut fitted = truncated.to_vec();
            set_u64(&mut fitted, 8, cut as u64);
            // Either an error or the samples before the cut (when it falls
            // after both the metadata and the pools).
            let _ = profiles(&fitted, None, &options());
        }
    }

    // Constant-pool offset pointing at the metadata, past the end, at 0.
    let metadata_offset = u64::from_be_bytes(good[24..32].try_into().unwrap());
    for offset in [metadata_offset, good.len() as u64, 0, HEADER_SIZE] {
        let mut bad = good.clone();
        set_u64(&mut bad, 16, offset);
        let msg = err(&bad);
        assert!(msg.starts_with("jfr: "), "{msg}");
    }

    // A trailing second chunk that is garbage.
    let mut two = good.clone();
    two.extend_from_slice(b"FLR\0garbage");
    let _ = err(&two);

    // gzip is inflated up to the limit only.
    let small = Options { max_decompressed_size: good.len() - 1, ..options() };
    let gz = read("jfr/cortex-dev-01__kafka-0__cpu__0.jfr.gz");
    let msg = profiles(&gz, None, &small).unwrap_err().to_string();
    assert!(msg.contains("decompressed size exceeds"), "{msg}");
    assert!(profiles(&gz, Some(b"\xff\xff\xff"), &options()).is_err());
}

/// Random byte damage anywhere (metadata, pools, events) ends in a result or
/// an error: no panic, no hang.
#[test]
fn damaged_recordings_never_panic() {
    for input in ["nativemem.jfr.gz", "wall_tick_sample.jfr.gz", "new_spancontext.jfr.gz"] {
        let good = gunzip(&read(&format!("jfr/{input}")));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let mut bad = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = HEADER_SIZE as usize + (next() as usize) % (bad.len() - HEADER_SIZE as usize);
                bad[at] = next() as u8;
            }
            if let Err(e) = profiles(&bad, None, &options()) {
                assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
            }
        }
    }
}

/// A minimal JFR writer for hand-made recordings.
mod synthetic {
    use super::*;

    #[derive(Default)]
    pub(super) struct W(pub Vec<u8>);

    impl W {
        pub fn varint(&mut self, mut v: u64) -> &mut Self {
            while v >= 0x80 {
                self.0.push(v as u8 | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
            self
        }
        pub fn string(&mut self, s: &str) -> &mut Self {
            self.0.push(3);
            self.varint(s.len() as u64);
            self.0.extend_from_slice(s.as_bytes());
            self
        }
    }

    /// `body` as a record: a 4-byte padded size varint, then the body.
    pub fn record(body: &[u8]) -> Vec<u8> {
        let n = body.len() + 4;
        let mut out = alloc::vec![(n as u8) | 0x80, (n >> 7) as u8 | 0x80, (n >> 14) as u8 | 0x80, (n >> 21) as u8];
        out.extend_from_slice(body);
        out
    }

    const LONG: u64 = 20;
    const INT: u64 = 21;
    const BOOLEAN: u64 = 22;
    const STRING: u64 = 23;
    const THREAD: u64 = 30;
    const CLASS: u64 = 31;
    const METHOD: u64 = 32;
    const SYMBOL: u64 = 34;
    const STACK_TRACE: u64 = 35;
    const STACK_FRAME: u64 = 36;
    const FRAME_TYPE: u64 = 38;
    const THREAD_STATE: u64 = 39;
    pub const EXECUTION_SAMPLE: u64 = 100;
    pub const ACTIVE_SETTING: u64 = 101;
    pub const UNKNOWN_EVENT: u64 = 102;

    /// (name, type id, constant pool, array)
    type F = (&'static str, u64, bool, bool);

    fn metadata() -> Vec<u8> {
        let classes: &[(u64, &str, &[F])] = &[
            (LONG, "long", &[]),
            (INT, "int", &[]),
            (BOOLEAN, "boolean", &[]),
            (STRING, "java.lang.String", &[]),
            (24, "short", &[]),
            (25, "float", &[]),
            (THREAD, "java.lang.Thread", &[("osName", STRING, false, false)]),
            (
                CLASS,
                "java.lang.Class",
                &[("classLoader", 37, true, false), ("name", SYMBOL, true, false), ("modifiers", INT, false, false)],
            ),
            (
                METHOD,
                "jdk.types.Method",
                &[("type", CLASS, true, false), ("name", SYMBOL, true, false), ("hidden", BOOLEAN, false, false)],
            ),
            (33, "jdk.types.Package", &[("name", SYMBOL, true, false)]),
            (SYMBOL, "jdk.types.Symbol", &[("string", STRING, false, false)]),
            (
                STACK_TRACE,
                "jdk.types.StackTrace",
                &[("truncated", BOOLEAN, false, false), ("frames", STACK_FRAME, false, true)],
            ),
            (
                STACK_FRAME,
                "jdk.types.StackFrame",
                &[
                    ("method", METHOD, true, false),
                    ("lineNumber", INT, false, false),
                    ("type", FRAME_TYPE, true, false),
                ],
            ),
            (37, "jdk.types.ClassLoader", &[("name", SYMBOL, true, false)]),
            (FRAME_TYPE, "jdk.types.FrameType", &[("description", STRING, false, false)]),
            (THREAD_STATE, "jdk.types.ThreadState", &[("name", STRING, false, false)]),
            (
                EXECUTION_SAMPLE,
                "jdk.ExecutionSample",
                &[
                    ("startTime", LONG, false, false),
                    ("sampledThread", THREAD, true, false),
                    ("stackTrace", STACK_TRACE, true, false),
                    ("state", THREAD_STATE, true, false),
                    ("contextId", LONG, false, false),
                    ("extra", STRING, false, false),
                ],
            ),
            (
                ACTIVE_SETTING,
                "jdk.ActiveSetting",
                &[("startTime", LONG, false, false), ("name", STRING, false, false), ("value", STRING, false, false)],
            ),
            (UNKNOWN_EVENT, "vendor.Unknown", &[("x", LONG, false, false)]),
        ];
        let mut strings: Vec<String> = Vec::new();
        let mut idx = |s: &str| match strings.iter().position(|x| x == s) {
            Some(i) => i as u64,
            None => {
                strings.push(s.into());
                strings.len() as u64 - 1
            }
        };
        let mut tree = W::default();
        let element =
            |tree: &mut W, idx: &mut dyn FnMut(&str) -> u64, name: &str, attrs: &[(&str, String)], children: u64| {
                tree.varint(idx(name)).varint(attrs.len() as u64);
                for (k, v) in attrs {
                    let (k, v) = (idx(k), idx(v));
                    tree.varint(k).varint(v);
                }
                tree.varint(children);
            };
        element(&mut tree, &mut idx, "root", &[], 1);
        element(&mut tree, &mut idx, "metadata", &[], classes.len() as u64);
        for (id, name, fields) in classes {
            element(
                &mut tree,
                &mut idx,
                "class",
                &[("id", id.to_string()), ("name", name.to_string())],
                fields.len() as u64,
            );
            for (fname, t, cp, array) in *fields {
                let mut attrs = alloc::vec![("name", fname.to_string()), ("class", t.to_string())];
                if *cp {
                    attrs.push(("constantPool", "true".into()));
                }
                if *array {
                    attrs.push(("dimension", "1".into()));
                }
                element(&mut tree, &mut idx, "field", &attrs, 0);
            }
        }
        let mut body = W::default();
        body.varint(0).varint(0).varint(0).varint(1).varint(strings.len() as u64);
        for s in &strings {
            body.string(s);
        }
        body.0.extend_from_slice(&tree.0);
        record(&body.0)
    }

    /// Pools with every key offset by `base`, as another chunk may number them.
    fn checkpoint(base: u64) -> Vec<u8> {
        let mut w = W::default();
        w.varint(1).varint(0).varint(0).varint(0).varint(1).varint(5);
        w.varint(SYMBOL).varint(4);
        for (k, s) in [(1, "com/x/Main"), (2, "main"), (3, "work"), (4, "com/x/Main$$Lambda$7/0x10")] {
            w.varint(base + k).string(s);
        }
        w.varint(CLASS).varint(2);
        w.varint(base + 1).varint(0).varint(base + 1).varint(0);
        w.varint(base + 2).varint(0).varint(base + 4).varint(0);
        w.varint(METHOD).varint(4);
        w.varint(base + 1).varint(base + 1).varint(base + 2).0.push(0);
        w.varint(base + 2).varint(base + 1).varint(base + 3).0.push(0);
        w.varint(base + 3).varint(base + 99).varint(base + 3).0.push(0); // class missing
        w.varint(base + 4).varint(base + 2).varint(base + 3).0.push(0);
        w.varint(STACK_TRACE).varint(3);
        let frames: [&[(u64, u64)]; 3] = [&[(2, 20), (1, 10)], &[(3, 5), (1, 11)], &[(4, 1), (1, 12)]];
        for (k, frames) in frames.iter().enumerate() {
            w.varint(base + k as u64 + 1).0.push(0);
            w.varint(frames.len() as u64);
            for (method, line) in *frames {
                w.varint(base + method).varint(*line).varint(0);
            }
        }
        w.varint(THREAD_STATE).varint(2);
        w.varint(base + 1).string("STATE_RUNNABLE");
        w.varint(base + 2).string("STATE_SLEEPING");
        record(&w.0)
    }

    pub fn sample(base: u64, stack: u64, state: u64) -> Vec<u8> {
        let mut w = W::default();
        w.varint(EXECUTION_SAMPLE).varint(7).varint(1).varint(base + stack).varint(base + state).varint(0).string("x");
        record(&w.0)
    }

    pub fn setting(name: &str, value: &str) -> Vec<u8> {
        let mut w = W::default();
        w.varint(ACTIVE_SETTING).varint(7).string(name).string(value);
        record(&w.0)
    }

    /// A whole chunk: header, `events`, metadata, constant pools.
    pub fn chunk(base: u64, events: &[Vec<u8>]) -> Vec<u8> {
        let mut body: Vec<u8> = events.concat();
        let metadata_offset = 68 + body.len() as u64;
        body.extend(metadata());
        let pool_offset = 68 + body.len() as u64;
        body.extend(checkpoint(base));
        let mut out = b"FLR\0".to_vec();
        out.extend_from_slice(&0x0002_0001u32.to_be_bytes());
        for v in [68 + body.len() as u64, pool_offset, metadata_offset, 0, 0, 0, 1_000_000_000] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend(body);
        out
    }
}

fn collapsed_of(ours: &[JfrProfile], metric: &str) -> Vec<(String, i64)> {
    let p = ours.iter().find(|p| p.labels.get("__name__") == Some(metric)).unwrap_or_else(|| panic!("no {metric}"));
    pp::collapsed(&p.profile, 0)
}

#[test]
fn synthetic_recording_maps_events_to_profiles() {
    use synthetic::*;
    let unknown = record(&[UNKNOWN_EVENT as u8, 5]);
    let events = [
        sample(0, 1, 1),
        sample(0, 1, 1),
        sample(0, 1, 2), // sleeping: no cpu
        sample(0, 9, 1), // stack trace not in the pool: dropped
        sample(0, 2, 1), // its leaf frame's class is missing: frame skipped
        sample(0, 3, 1), // lambda class name folded
        unknown,
        setting("event", "wall"),
        sample(0, 1, 2), // wall mode: wall only
    ];
    let ours = profiles(&chunk(0, &events), None, &Options::default()).unwrap();
    let ms = |n: i64| n * 10_000_000;
    let cpu = alloc::vec![
        ("com/x/Main.main".to_string(), ms(1)),
        ("com/x/Main.main;com/x/Main$$Lambda_.work".to_string(), ms(1)),
        ("com/x/Main.main;com/x/Main.work".to_string(), ms(2)),
    ];
    assert_eq!(collapsed_of(&ours, "process_cpu"), cpu);
    assert_eq!(collapsed_of(&ours, "wall"), [("com/x/Main.main;com/x/Main.work".to_string(), ms(1))]);
    assert!(ours.iter().all(|p| p.labels.get("jfr_event") == Some("wall")));
    for p in &ours {
        pp::validate(&p.profile, &pp::Limits::default()).unwrap();
    }
}

/// Chunks number their pools independently; samples merge by content.
#[test]
fn chunks_merge_by_resolved_stacks() {
    use synthetic::*;
    let mut two = chunk(0, &[sample(0, 1, 1)]);
    two.extend(chunk(1000, &[sample(1000, 1, 1), sample(1000, 1, 1)]));
    let ours = profiles(&two, None, &Options::default()).unwrap();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].profile.sample.len(), 1);
    assert_eq!(collapsed_of(&ours, "process_cpu"), [("com/x/Main.main;com/x/Main.work".to_string(), 30_000_000)]);
    // A truncated second chunk fails the whole upload.
    let err = profiles(&two[..two.len() - 3], None, &Options::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

/// Events larger than their chunk, of size 0, or with damaged fields.
#[test]
fn synthetic_damage_is_rejected() {
    use synthetic::*;
    let zero = chunk(0, &[alloc::vec![0u8]]);
    assert!(err(&zero).contains("size 0"), "{}", err(&zero));
    let mut too_big = sample(0, 1, 1);
    too_big[2] = 0xff;
    too_big[3] = 0x7f;
    assert!(err(&chunk(0, &[too_big])).contains("exceeds its chunk"));
    // Sample rate 0: CPU samples are worth nothing.
    let none = Options { sample_rate: 0, ..Options::default() };
    let ours = profiles(&chunk(0, &[sample(0, 1, 1)]), None, &none).unwrap();
    assert!(ours[0].profile.sample.iter().all(|s| s.value == [0]));
}

/// What the conversion produces is a valid pprof for the ingest pipeline,
/// which stores it as is.
#[test]
fn converted_profiles_are_ingestible() {
    use crate::ingest::{IngestLimits, RawProfile, push};
    use crate::store::{MemoryStore, Storage};
    use kiln_proto::types::v1::LabelPair;
    use prost::Message;

    let now_ms = 1_800_000_000_000;
    let store = MemoryStore::default();
    let storage = Storage::new(&store, "t");
    let options = Options { from_nanos: (now_ms - 60_000) * 1_000_000, until_nanos: now_ms * 1_000_000, ..options() };
    let jfr = read("jfr/dump2.jfr.gz");
    let ours = profiles(&jfr, Some(&read("jfr/dump2.labels.pb.gz")), &options).unwrap();
    for jp in &ours {
        let mut labels: Vec<LabelPair> =
            jp.labels.iter().map(|(n, v)| LabelPair { name: n.into(), value: v.into() }).collect();
        labels.push(LabelPair { name: "service_name".into(), value: "app".into() });
        let bytes = jp.profile.encode_to_vec();
        let summary = push(
            &storage,
            &[RawProfile { labels: &labels, bytes: &bytes }],
            now_ms,
            &mut || [1; 16],
            &IngestLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{:?}: {e}", jp.labels));
        assert!(summary.series >= jp.profile.sample_type.len());
    }
}
