//! The views on hand-made inputs, and against the server: the same file
//! ingested through `/ingest` and queried must give the same profile types
//! and flame graphs as the offline views. Real files come from the shared
//! test data (`../shared/testdata`, or `$KILN_SHARED`), which must exist.

extern crate std;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{FlameGraph, ProfileTypesRequest, SelectMergeStacktracesRequest};
use prost::Message;

use super::*;
use crate::gzip;
use crate::ingest::IngestLimits;
use crate::legacy::{self, Upload};
use crate::pprof::tests::{profile_of, sample_profile};
use crate::pprof::{Profile, collapsed};
use crate::query::{self, Context, QueryLimits};
use crate::store::{MemoryStore, Storage};
use crate::testdata::read;
use crate::tree::tests::{pairs, tree};

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const SAMPLES: &str = "process_cpu:samples:count:cpu:nanoseconds";

fn load_bytes(bytes: &[u8]) -> Result<Loaded> {
    load(bytes.to_vec(), &mut |_, _| {})
}

fn type_ids(loaded: &Loaded) -> Vec<String> {
    loaded.types.iter().map(|t| t.profile_type.id()).collect()
}

fn tree_of(loaded: &Loaded, id: &str) -> StackTree {
    assert!(loaded.types.iter().any(|t| t.profile_type.id() == id), "no type {id}");
    loaded.tree(id).unwrap()
}

#[test]
fn pprof_plain_and_gzip_one_tree_per_type() {
    let bytes = sample_profile().encode_to_vec();
    for input in [bytes.clone(), gzip::compress(&bytes)] {
        let mut seen = Vec::new();
        let loaded = load(input, &mut |done, total| seen.push((done, total))).unwrap();
        assert_eq!(loaded.format, Format::Pprof);
        assert_eq!(type_ids(&loaded), [SAMPLES, CPU]);
        assert_eq!(tree_of(&loaded, SAMPLES).collapsed(), pairs(&[("main;a", 3), ("main;b", 2)]));
        assert_eq!(tree_of(&loaded, CPU).collapsed(), pairs(&[("main;a", 30), ("main;b", 20)]));
        assert_eq!(seen.last(), Some(&(bytes.len() as u64, bytes.len() as u64)));
    }
}

#[test]
fn unsymbolized_locations_are_drawn_as_their_addresses() {
    let mut p = sample_profile();
    // Location 2 (`a`) loses its lines, as in a stripped binary's profile.
    p.location[1].line.clear();
    p.location[1].address = 0x4a1b2c;
    for input in [p.encode_to_vec(), gzip::compress(&p.encode_to_vec())] {
        let loaded = load_bytes(&input).unwrap();
        assert_eq!(tree_of(&loaded, CPU).collapsed(), pairs(&[("main;0x4a1b2c", 30), ("main;b", 20)]));
    }
}

#[test]
fn samples_the_server_drops_are_dropped() {
    let mut p = sample_profile();
    p.sample[1].value = vec![-1, 20];
    p.sample.push(crate::pprof::Sample { location_id: vec![3, 2, 1], value: vec![0, 0], label: vec![] });
    let loaded = load_bytes(&p.encode_to_vec()).unwrap();
    let cpu = tree_of(&loaded, CPU);
    assert_eq!(cpu.collapsed(), pairs(&[("main;a", 30)]));
    assert_eq!(cpu.node_count(), 2, "no nodes for dropped samples");
    // A type without a non-zero value has no tree.
    p.sample[0].value = vec![0, 30];
    assert_eq!(type_ids(&load_bytes(&p.encode_to_vec()).unwrap()), [CPU]);
}

#[test]
fn folded_text_is_cpu_at_100_hz_like_ingest() {
    let loaded = load_bytes(b"a;b 2\r\na;c 1\n").unwrap();
    assert_eq!(loaded.format, Format::Folded);
    assert_eq!(type_ids(&loaded), [CPU]);
    assert_eq!(tree_of(&loaded, CPU).collapsed(), pairs(&[("a;b", 20_000_000), ("a;c", 10_000_000)]));
}

#[test]
fn unreadable_files_say_why() {
    let err = |bytes: &[u8]| load_bytes(bytes).unwrap_err().to_string();
    assert_eq!(err(b""), "not a profile: the file is empty");
    assert!(err(b"hello world\n").starts_with("not a profile: folded: "), "{}", err(b"hello world\n"));
    assert!(err(&[0xff, 0x01, 0x02, 0x03]).starts_with("not a profile: not a pprof"));
    assert!(err(b"\x1f\x8b\x08\x00garbage").starts_with("not a profile: gzip"));
    assert!(err(b"{\"x\": 1}").starts_with("not a profile: speedscope"));
    let mut p = sample_profile();
    p.function[0].name = 99;
    assert_eq!(err(&p.encode_to_vec()), "malformed pprof: function name string index out of range");
    let mut p = sample_profile();
    p.sample[0].location_id = vec![42];
    assert_eq!(err(&p.encode_to_vec()), "malformed pprof: sample references unknown location id 42");
    let empty = Profile { sample_type: sample_profile().sample_type, ..sample_profile() };
    let empty = Profile { sample: vec![], ..empty };
    assert_eq!(err(&empty.encode_to_vec()), "not a profile: no stack with a non-zero value");
}

/// A workspace holding the `(root;…;leaf, value)` stacks of each input as
/// one cpu pprof file.
fn workspace(files: &[&[(&str, i64)]]) -> (Workspace, Vec<u32>) {
    let mut ws = Workspace::new();
    let ids = files
        .iter()
        .enumerate()
        .map(|(i, stacks)| ws.load(&format!("f{i}"), profile_of(stacks).encode_to_vec(), &mut |_, _| {}).unwrap().id)
        .collect();
    (ws, ids)
}

const CPU_ONLY: &str = "process_cpu:cpu:nanoseconds::";

#[test]
fn merged_flame_graph_is_the_flame_graph_of_all_stacks() {
    let a: &[(&str, i64)] = &[("main;a", 3), ("main;b", 2)];
    let b: &[(&str, i64)] = &[("main;a", 1), ("other;x", 5)];
    let (mut ws, ids) = workspace(&[a, b]);
    let all = tree(&[("main;a", 3), ("main;b", 2), ("main;a", 1), ("other;x", 5)]);
    assert_eq!(ws.flamegraph(&ids, CPU_ONLY, 0).unwrap(), flamegraph(&all, DEFAULT_MAX_NODES));
    assert_eq!(ws.flamegraph(&ids, CPU_ONLY, 2).unwrap(), flamegraph(&all, 2));
    assert_eq!(ws.flamegraph(&ids[..1], CPU_ONLY, 0).unwrap().total, 5);
    assert_eq!(ws.flamegraph(&ids, "memory:x:y::", 0).unwrap().total, 0, "no file has the type");
    assert!(ws.flamegraph(&[99], CPU_ONLY, 0).is_err());
    assert!(ws.remove(ids[1]));
    assert!(!ws.remove(ids[1]));
    assert_eq!(ws.flamegraph(&ids[..1], CPU_ONLY, 0).unwrap().total, 5);
    assert_eq!(ws.files().len(), 1);
}

#[test]
fn top_counts_recursion_once() {
    let (ws, ids) = workspace(&[&[("main;f;f;g", 4), ("main;f", 1), ("main;g", 2)]]);
    let rows = ws.top(&ids, CPU_ONLY, 0).unwrap();
    let row = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    assert_eq!((row("g").self_value, row("g").total), (6, 6));
    assert_eq!((row("f").self_value, row("f").total), (1, 5));
    assert_eq!((row("main").self_value, row("main").total), (0, 7));
    assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["g", "f", "main"]);
    assert_eq!(ws.top(&ids, CPU_ONLY, 1).unwrap().len(), 1);
}

#[test]
fn sandwich_of_a_recursive_function() {
    let (ws, ids) = workspace(&[&[("main;f;x;f;g", 4), ("main;f", 1), ("main;g", 8)], &[("a;f;h", 2), ("b", 1)]]);
    let callees = tree(&[("f", 1), ("f;h", 2), ("f;x;f;g", 4)]);
    let callers = tree(&[("f;a", 2), ("f;main", 1), ("f;x;f;main", 4)]);
    for max_nodes in [0, 2, 3] {
        let expected = |t: &StackTree| flamegraph(t, nodes(max_nodes));
        let (up, down) = ws.sandwich(&ids, CPU_ONLY, "f", max_nodes).unwrap();
        assert_eq!((up, down), (expected(&callers), expected(&callees)), "max_nodes {max_nodes}");
    }
    let (up, down) = ws.sandwich(&ids, CPU_ONLY, "zz", 0).unwrap();
    assert_eq!((up.total, down.total), (0, 0));
    let (up, down) = ws.sandwich(&ids, CPU_ONLY, "g", 0).unwrap();
    assert_eq!(up.names, ["total", "g", "main", "f", "x"]);
    assert_eq!((up.total, down.total), (12, 12));
}

#[test]
fn diff_of_two_sets() {
    let (ws, ids) = workspace(&[&[("a;b", 3)], &[("a;b", 1), ("d", 4)], &[("a;c", 2)]]);
    let fg = ws.diff(&ids[..1], &ids[1..], CPU_ONLY, 0).unwrap();
    assert_eq!((fg.left_ticks, fg.right_ticks), (3, 7));
    let left = tree(&[("a;b", 3)]);
    let right = tree(&[("a;b", 1), ("d", 4), ("a;c", 2)]);
    assert_eq!(fg, flamegraph_diff(&left, &right, DEFAULT_MAX_NODES));
}

#[test]
fn export_round_trips() {
    let (ws, ids) = workspace(&[&[("main;a", 3), ("main;a;b", 2)], &[("main;a", 1), ("x", 5)]]);
    let gz = ws.export_pprof(&ids, CPU_ONLY).unwrap();
    let profile = Profile::decode(&gzip::decompress(&gz, 1 << 20).unwrap()[..]).unwrap();
    crate::pprof::validate(&profile, &crate::pprof::Limits::default()).unwrap();
    assert_eq!(collapsed(&profile, 0), pairs(&[("main;a", 4), ("main;a;b", 2), ("x", 5)]));
    let again = load(gz, &mut |_, _| {}).unwrap();
    assert_eq!(type_ids(&again), [CPU_ONLY]);
    assert_eq!(tree_of(&again, CPU_ONLY).collapsed(), ws.merge(&ids, CPU_ONLY).unwrap().collapsed());
}

// --- against the shared test data and the server ---

/// MANIFEST rows of pprof files: (path, description, value sums per type).
fn manifest_pprofs() -> Vec<(String, String, Vec<i64>)> {
    let text = std::fs::read_to_string(crate::testdata::dir().join("MANIFEST.md")).unwrap();
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `pprof/")) {
        let cols: Vec<&str> = line.split(" | ").collect();
        let path = cols[0].trim_start_matches("| `").trim_end_matches('`');
        let Some(sums) = line.split("value sums ").nth(1) else { continue };
        let sums = sums.split(';').next().unwrap();
        let sums = sums.split(" / ").map(|s| s.trim().parse::<i64>().unwrap()).collect();
        rows.push((path.to_string(), cols[3].to_string(), sums));
    }
    rows
}

/// The acceptance check of issue 5: all Go CPU pprofs merged give the sum of
/// their MANIFEST totals (stripped ones too: their frames are addresses).
#[test]
fn merged_go_cpu_profiles_total_the_manifest_sums() {
    let mut ws = Workspace::new();
    let mut ids = Vec::new();
    let mut want = 0;
    for (path, description, sums) in manifest_pprofs() {
        let go_cpu = description.starts_with("Go CPU profile") || description.starts_with("Go runtime/pprof CPU");
        // Parca's re-encoded profile has no sample type names (no cpu type).
        if !go_cpu || sums.len() != 2 || path.ends_with(".fixed") {
            continue;
        }
        let file = ws.load(&path, read(&path), &mut |_, _| {}).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(file.loaded.types.iter().any(|t| t.profile_type.id() == CPU), "{path}: {:?}", type_ids(&file.loaded));
        ids.push(file.id);
        want += sums[1];
    }
    assert!(ids.len() >= 10, "only {} Go CPU profiles found", ids.len());
    std::println!("{} Go CPU profiles, total {want}", ids.len());
    let fg = ws.flamegraph(&ids, CPU, 0).unwrap();
    assert_eq!(fg.total, want);
    assert_eq!(fg.levels[0].values[1], want);
}

const NOW_MS: i64 = 1_800_000_000_000;

/// What the server stores of one upload: profile type ids and each one's
/// flame graph (default node limit), queried as the UI would.
fn server_view(query: &str, body: &[u8]) -> BTreeMap<String, FlameGraph> {
    let kv = MemoryStore::default();
    let storage = Storage::new(&kv, "t");
    let mut limits = IngestLimits { reject_older_than_ms: 0, reject_newer_than_ms: 0, ..IngestLimits::default() };
    limits.profile.max_profile_size = 64 << 20;
    limits.profile.max_samples = usize::MAX;
    let upload = Upload { query, content_type: "", body };
    legacy::ingest(&storage, &upload, NOW_MS, &mut || [7; 16], &limits).unwrap_or_else(|e| panic!("{query}: {e}"));
    let qlimits = QueryLimits::default();
    let cx =
        Context { storage: Storage::new(&kv, "t"), now_ms: NOW_MS, limits: &qlimits, allow_utf8_label_names: false };
    let (start, end) = (NOW_MS - 3_600_000, NOW_MS + 1);
    let types = query::profile_types(&cx, &ProfileTypesRequest { start, end }).unwrap();
    types
        .profile_types
        .into_iter()
        .map(|t| {
            let req = SelectMergeStacktracesRequest {
                profile_type_id: t.id.clone(),
                label_selector: "{}".into(),
                start,
                end,
                ..Default::default()
            };
            let fg = query::select_merge_stacktraces(&cx, &req).unwrap().flamegraph.unwrap();
            (t.id, fg)
        })
        .collect()
}

fn offline_view(bytes: Vec<u8>) -> BTreeMap<String, FlameGraph> {
    let mut ws = Workspace::new();
    let id = ws.load("f", bytes, &mut |_, _| {}).unwrap().id;
    let types: Vec<String> = type_ids(&ws.files()[0].loaded);
    types.into_iter().map(|t| (t.clone(), ws.flamegraph(&[id], &t, 0).unwrap())).collect()
}

/// A pprof stamped "a second ago", so the server's window takes it.
fn fresh_pprof(path: &str) -> Vec<u8> {
    let raw = read(path);
    let raw = if gzip::is_gzip(&raw) { gzip::decompress(&raw, 1 << 30).unwrap() } else { raw };
    let mut p = Profile::decode(&raw[..]).unwrap();
    p.time_nanos = (NOW_MS - 1000) * 1_000_000;
    p.encode_to_vec()
}

#[test]
fn same_types_and_flame_graphs_as_the_server() {
    let pprofs = [
        "pprof/pyroscope/cpu.pb.gz",
        "pprof/pyroscope/cpu-exemplars.pb.gz",
        "pprof/pyroscope/cpu-js.pb.gz",
        "pprof/pyroscope/heap.pb.gz",
        "pprof/pyroscope/req_3.pprof",
        "pprof/pyroscope/profile_java",
        "pprof/parca/fgprof.pb.gz",
        "pprof/google-pprof/large.cpu",
    ];
    for path in pprofs {
        let body = fresh_pprof(path);
        let offline = offline_view(body.clone());
        assert_eq!(offline, server_view("name=app&format=pprof", &body), "{path}");
    }
    let texts = [
        ("folded/perf-vertx-stacks-01-collapsed-all.txt", "name=offline.cpu"),
        ("speedscope/pyroscope/simple.speedscope.json", "name=offline&format=speedscope"),
        ("speedscope/pyroscope/two-sampled.speedscope.json", "name=offline&format=speedscope"),
    ];
    for (path, query) in texts {
        let body = read(path);
        let offline = offline_view(body.clone());
        assert!(!offline.is_empty(), "{path}");
        assert_eq!(offline, server_view(query, &body), "{path}");
    }
    for path in ["jfr/example.jfr.gz", "jfr/cortex-dev-01__kafka-0__cpu__0.jfr.gz"] {
        let body = read(path);
        let raw = gzip::decompress(&body, 1 << 30).unwrap();
        let offline = offline_view(body);
        assert!(!offline.is_empty(), "{path}");
        assert_eq!(offline, server_view("name=offline&format=jfr", &raw), "{path}");
    }
}

/// The streaming reader and the decoded profile give the same trees (same
/// nodes in the same order, same values) for every pprof of the test data,
/// and fail alike.
#[test]
fn streaming_reader_matches_the_decoded_profile() {
    let mut compared = 0;
    for (path, _, _) in manifest_pprofs() {
        let raw = read(&path);
        let raw = if gzip::is_gzip(&raw) { gzip::decompress(&raw, 1 << 30).unwrap() } else { raw };
        let decoded = Profile::decode(&raw[..])
            .map_err(|e| e.to_string())
            .and_then(|p| load_decoded_pprof(p).map_err(|e| e.to_string()));
        let streamed = load(raw, &mut |_, _| {}).map_err(|e| e.to_string());
        match (decoded, streamed) {
            (Ok(d), Ok(s)) => {
                assert_eq!(type_ids(&d), type_ids(&s), "{path}");
                for id in type_ids(&d) {
                    let (d, s) = (tree_of(&d, &id), tree_of(&s, &id));
                    assert_eq!(d.parents(), s.parents(), "{path}");
                    assert_eq!(d.names(), s.names(), "{path}");
                    assert_eq!(d.node_name_ids(), s.node_name_ids(), "{path}");
                    assert_eq!(d.self_values(), s.self_values(), "{path}");
                }
                compared += 1;
            }
            (Err(d), Err(s)) => {
                assert!(d.starts_with("not a profile") == s.starts_with("not a profile"), "{path}: {d} / {s}")
            }
            (d, s) => panic!("{path}: decoded {:?} streamed {:?}", d.map(|_| ()), s.map(|_| ())),
        }
    }
    assert!(compared > 50, "{compared}");
}

/// Stacks deeper than the limit keep their root-most frames, whether the
/// file packs location ids (referenced in place, the leaf-most skipped) or
/// writes one field per id (copied).
#[test]
fn deep_and_unpacked_stacks_read_as_decoded() {
    let mut p = sample_profile();
    let depth = super::build::limits().max_stack_depth + 5;
    // Leaf-first: the five leaf-most frames are `b`, the rest cycle a, main.
    let ids: Vec<u64> = (0..depth).map(|i| if i < 5 { 3 } else { 1 + (i % 2) as u64 }).collect();
    p.sample.push(crate::pprof::Sample { location_id: ids, value: vec![1, 10], label: vec![] });
    let expected = load_decoded_pprof(p.clone()).unwrap();
    // The same samples with every location id in a field of its own.
    let mut unpacked = Profile { sample: vec![], ..p.clone() }.encode_to_vec();
    for sample in &p.sample {
        let mut inner = Vec::new();
        for &id in &sample.location_id {
            prost::encoding::encode_varint(1 << 3, &mut inner);
            prost::encoding::encode_varint(id, &mut inner);
        }
        let values: Vec<u8> = sample
            .value
            .iter()
            .flat_map(|&v| {
                let mut b = Vec::new();
                prost::encoding::encode_varint(v as u64, &mut b);
                b
            })
            .collect();
        prost::encoding::encode_varint(2 << 3 | 2, &mut inner);
        prost::encoding::encode_varint(values.len() as u64, &mut inner);
        inner.extend(values);
        prost::encoding::encode_varint(2 << 3 | 2, &mut unpacked);
        prost::encoding::encode_varint(inner.len() as u64, &mut unpacked);
        unpacked.extend(inner);
    }
    for bytes in [p.encode_to_vec(), unpacked] {
        let loaded = load_bytes(&bytes).unwrap();
        for id in [SAMPLES, CPU] {
            assert_eq!(tree_of(&loaded, id).collapsed(), tree_of(&expected, id).collapsed(), "{id}");
        }
        let deepest = tree_of(&loaded, CPU).collapsed().into_iter().map(|(s, _)| s.split(';').count()).max();
        assert_eq!(deepest, Some(depth - 5));
    }
}

#[test]
fn streaming_reader_errors() {
    let err = |bytes: &[u8]| load_bytes(bytes).unwrap_err().to_string();
    let bytes = sample_profile().encode_to_vec();
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(err(&bytes[..cut]).starts_with("not a profile"), "cut at {cut}: {}", err(&bytes[..cut]));
    }
    let mut p = sample_profile();
    p.sample[0].value.pop();
    assert_eq!(err(&p.encode_to_vec()), "malformed pprof: sample value length mismatch");
    let mut p = sample_profile();
    p.sample[0].label.push(kiln_proto::google::v1::Label { key: 99, ..Default::default() });
    assert_eq!(err(&p.encode_to_vec()), "malformed pprof: sample label string index out of range");
    let mut p = sample_profile();
    p.string_table[6] = "x".repeat(70_000);
    let loaded = load_bytes(&p.encode_to_vec()).unwrap();
    let tree = tree_of(&loaded, &loaded.types[0].profile_type.id());
    assert!(tree.names().iter().all(|n| n.len() <= 65_535), "long names keep their tail");
}
