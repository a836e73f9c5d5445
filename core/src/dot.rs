//! Graphviz DOT of a merged pprof, the way `pprof -dot` (and Pyroscope's copy
//! of its report code) draws it: one node per function (name and file) with
//! flat and cumulative values, caller → callee edges, the `node_count` most
//! interesting nodes kept, and dotted residual edges across dropped ones
//! (spec `query.md` §4.4).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use regex_automata::meta::Regex;

use crate::pprof::Profile;
use crate::time::civil_from_days;
use crate::{FastMap, FastSet};

/// The DOT text for `profile`'s last sample type, keeping at most
/// `node_count` nodes. An empty profile still gives a valid graph (legend only).
pub fn dot(profile: &Profile, node_count: usize) -> String {
    let index = profile.sample_type.len().saturating_sub(1);
    let string = |i: i64| profile.string_table.get(i as usize).map_or("", String::as_str);
    let (sample_type, sample_unit) = profile
        .sample_type
        .get(index)
        .map_or(("", String::new()), |t| (string(t.r#type), string(t.unit).to_ascii_lowercase()));
    let functions = Functions::of(profile);
    let total: i64 = profile.sample.iter().map(|s| s.value.get(index).copied().unwrap_or(0).abs()).sum();

    let mut graph = functions.graph(profile, index, None);
    graph.sort(&functions);
    let all_nodes = graph.nodes.len();
    if node_count < graph.nodes.len() {
        let mut kept = vec![false; functions.infos.len()];
        for &n in &graph.nodes[..node_count] {
            kept[n as usize] = true;
        }
        graph = functions.graph(profile, index, Some(&kept));
        graph.sort(&functions);
    }
    graph.remove_redundant_edges(&functions);

    let title = profile
        .mapping
        .first()
        .map(|m| base_name(string(m.filename)))
        .filter(|f| !f.is_empty())
        .map(ToString::to_string);
    let value = |v: i64| scaled_label(v, &sample_unit);
    let mut legend = Vec::new();
    if let Some(m) = profile.mapping.first() {
        if let Some(file) = &title {
            legend.push(format!("File: {file}"));
        }
        if !string(m.build_id).is_empty() {
            legend.push(format!("Build ID: {}", string(m.build_id)));
        }
    }
    for &c in &profile.comment {
        if !string(c).starts_with('#') {
            legend.push(string(c).into());
        }
    }
    if !sample_type.is_empty() {
        legend.push(format!("Type: {sample_type}"));
    }
    if profile.time_nanos != 0 {
        legend.push(format!("Time: {}", clock_label(profile.time_nanos)));
    }
    let flat_sum: i64 = graph.nodes.iter().map(|&n| graph.flat[n as usize]).sum();
    legend.push(format!(
        "Showing nodes accounting for {}, {} of {} total",
        value(flat_sum),
        percentage(flat_sum, total).trim(),
        value(total)
    ));
    if total != 0 && graph.nodes.len() < all_nodes {
        legend.push(format!("Showing top {} nodes out of {all_nodes}", graph.nodes.len()));
    }
    legend.push("\nSee https://git.io/JfYMW for how to read the graph".into());

    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(title.as_deref().unwrap_or("unnamed")));
    out.push_str("node [style=filled fillcolor=\"#f8f8f8\"]\n");
    let labels: Vec<String> = legend.iter().map(|l| escape(l)).collect();
    let _ = write!(
        out,
        "subgraph cluster_L {{ \"{}\" [shape=box fontsize=16 label=\"{}\\l\"",
        labels[0],
        labels.join("\\l")
    );
    if let Some(t) = &title {
        let _ = write!(out, " tooltip=\"{}\"", escape(t));
    }
    out.push_str("] }\n");

    let shortener = Shortener::new();
    let mut ids = vec![0usize; functions.infos.len()];
    let max_flat = graph.nodes.iter().map(|&n| graph.flat[n as usize].abs()).max().unwrap_or(0) as f64;
    for (i, &n) in graph.nodes.iter().enumerate() {
        ids[n as usize] = i + 1;
        let (flat, cum) = (graph.flat[n as usize], graph.cum[n as usize]);
        let mut label = functions.multiline_name(n, &shortener);
        if flat != 0 {
            let _ = write!(label, "{} ({})", value(flat), percentage(flat, total).trim());
        } else {
            label.push('0');
        }
        let cum_value = if cum != flat {
            label.push_str(if flat != 0 { "\\n" } else { " " });
            let _ = write!(label, "of {} ({})", value(cum), percentage(cum, total).trim());
            value(cum)
        } else {
            value(flat)
        };
        // Font grows from 8 to 24 with the square root of the flat share.
        let mut font_size = 8;
        if max_flat != 0.0 && flat != 0 {
            font_size += libm::ceil(16.0 * libm::sqrt(flat.abs() as f64 / max_flat)) as i64;
        }
        let share = ratio(cum, total);
        let _ = writeln!(
            out,
            "N{id} [label=\"{label}\" id=\"node{id}\" fontsize={font_size} shape=box tooltip=\"{} ({cum_value})\" color=\"{}\" fillcolor=\"{}\"]",
            escape(&functions.printable_name(n)),
            color(share, false),
            color(share, true),
            id = i + 1,
        );
    }

    for ((src, dst), e) in graph.sorted_edges(&functions) {
        let w = value(e.weight);
        let mut attr = format!("label=\" {w}{}\"", if e.inline { "\\n (inline)" } else { "" });
        if total != 0 {
            let weight = 1 + (e.weight.saturating_mul(100) / total).abs().min(100);
            if weight > 1 {
                let _ = write!(attr, " weight={weight}");
            }
            let width = 1 + (e.weight.saturating_mul(5) / total).abs().min(5);
            if width > 1 {
                let _ = write!(attr, " penwidth={width}");
            }
            let _ = write!(attr, " color=\"{}\"", color(ratio(e.weight, total), false));
        }
        let arrow = if e.residual { "..." } else { "->" };
        let tooltip = format!(
            "\"{} {arrow} {} ({w})\"",
            escape(&functions.printable_name(src)),
            escape(&functions.printable_name(dst))
        );
        let _ = write!(attr, " tooltip={tooltip} labeltooltip={tooltip}");
        if e.residual {
            attr.push_str(" style=\"dotted\"");
        }
        let _ = writeln!(out, "N{} -> N{} [{attr}]", ids[src as usize], ids[dst as usize]);
    }
    out.push_str("}\n");
    out
}

/// A graph node's identity: function name and source file.
struct Info {
    name: String,
    file: String,
}

/// The distinct functions of a profile and, per location, its frames'
/// function ids from the outermost caller to the innermost inlined callee.
struct Functions {
    infos: Vec<Info>,
    frames: FastMap<u64, Vec<u32>>,
}

impl Functions {
    fn of(profile: &Profile) -> Self {
        let string = |i: i64| profile.string_table.get(i as usize).map_or("", String::as_str);
        let mut infos = Vec::new();
        let mut ids: FastMap<(String, String), u32> = FastMap::default();
        let mut intern = |name: String, file: String| -> u32 {
            *ids.entry((name.clone(), file.clone())).or_insert_with(|| {
                infos.push(Info { name, file });
                infos.len() as u32 - 1
            })
        };
        let functions: FastMap<u64, (&str, &str)> =
            profile.function.iter().map(|f| (f.id, (string(f.name), string(f.filename)))).collect();
        let mappings: FastMap<u64, &str> = profile.mapping.iter().map(|m| (m.id, string(m.filename))).collect();
        let mut frames = FastMap::default();
        for loc in &profile.location {
            let mut ids: Vec<u32> = loc
                .line
                .iter()
                .filter_map(|l| functions.get(&l.function_id))
                .map(|&(name, file)| intern(name.into(), clean_path(file)))
                .collect();
            if ids.is_empty() {
                // No symbols: the address, and the binary when known.
                let object = mappings.get(&loc.mapping_id).map(|f| base_name(f)).unwrap_or_default();
                let file = if object.is_empty() { String::new() } else { format!("[{object}]") };
                ids.push(intern(format!("{:016x}", loc.address), file));
            }
            // pprof lists a location's lines innermost first.
            ids.reverse();
            frames.insert(loc.id, ids);
        }
        Self { infos, frames }
    }

    /// Flat, cumulative and edge weights over every sample, counting each
    /// node and edge once per sample (recursion). With `kept`, other nodes
    /// are skipped and edges across them are residual.
    fn graph(&self, profile: &Profile, index: usize, kept: Option<&[bool]>) -> Graph {
        let n = self.infos.len();
        let mut g = Graph { nodes: Vec::new(), flat: vec![0; n], cum: vec![0; n], edges: FastMap::default() };
        let mut seen_nodes: FastSet<u32> = FastSet::default();
        let mut seen_edges: FastSet<(u32, u32)> = FastSet::default();
        for sample in &profile.sample {
            let w = sample.value.get(index).copied().unwrap_or(0);
            if w == 0 {
                continue;
            }
            seen_nodes.clear();
            seen_edges.clear();
            let mut parent: Option<u32> = None;
            let mut residual = false;
            for loc in sample.location_id.iter().rev() {
                let Some(frames) = self.frames.get(loc) else { continue };
                for (i, &node) in frames.iter().enumerate() {
                    if kept.is_some_and(|k| !k[node as usize]) {
                        residual = true;
                        continue;
                    }
                    if seen_nodes.insert(node) {
                        g.cum[node as usize] += w;
                    }
                    if let Some(p) = parent
                        && p != node
                        && seen_edges.insert((p, node))
                    {
                        let inline = i != 0;
                        let e = g.edges.entry((p, node)).or_insert(Edge { weight: 0, residual, inline });
                        e.weight += w;
                        e.residual |= residual;
                        e.inline &= inline;
                    }
                    parent = Some(node);
                    residual = false;
                }
            }
            if let Some(leaf) = parent
                && !residual
            {
                g.flat[leaf as usize] += w;
            }
        }
        g.nodes = (0..n as u32).filter(|&i| g.flat[i as usize] != 0 || g.cum[i as usize] != 0).collect();
        g
    }

    /// `name file`, pprof's one-line node name.
    fn printable_name(&self, n: u32) -> String {
        let info = &self.infos[n as usize];
        match (info.name.is_empty(), info.file.is_empty()) {
            (false, false) => format!("{} {}", info.name, info.file),
            (false, true) => info.name.clone(),
            (true, false) => info.file.clone(),
            (true, true) => "<unknown>".into(),
        }
    }

    /// The node label's name part: the shortened name split at `::` and `.`,
    /// then the file's base name, each on its own line.
    fn multiline_name(&self, n: u32, shortener: &Shortener) -> String {
        let info = &self.infos[n as usize];
        let name =
            escape(&shortener.shorten(&info.name)).replace("::", "\\n").replace("[...]", "[…]").replace('.', "\\n");
        let mut parts = Vec::new();
        if !name.is_empty() {
            parts.push(name);
        }
        if !info.file.is_empty() {
            parts.push(escape(base_name(&info.file)));
        } else if info.name.is_empty() {
            parts.push("<unknown>".into());
        }
        let mut label = parts.join("\\n");
        label.push_str("\\n");
        label
    }
}

#[derive(Clone, Copy)]
struct Edge {
    weight: i64,
    residual: bool,
    inline: bool,
}

struct Graph {
    /// Function ids with a non-zero value, in display order once sorted.
    nodes: Vec<u32>,
    flat: Vec<i64>,
    cum: Vec<i64>,
    edges: FastMap<(u32, u32), Edge>,
}

impl Graph {
    /// pprof's "entropy" order for visual graphs: entry and leaf nodes and
    /// nodes whose traffic is spread over many edges first, weighted by cum.
    fn sort(&mut self, functions: &Functions) {
        let mut ins: FastMap<u32, Vec<i64>> = FastMap::default();
        let mut outs: FastMap<u32, Vec<i64>> = FastMap::default();
        for (&(src, dst), e) in &self.edges {
            outs.entry(src).or_default().push(e.weight);
            ins.entry(dst).or_default().push(e.weight);
        }
        let score = |n: u32| -> i64 {
            let (flat, cum) = (self.flat[n as usize], self.cum[n as usize]);
            let mut score = match ins.get(&n) {
                Some(weights) => edge_entropy(weights, 0),
                None => 1.0,
            };
            score += match outs.get(&n) {
                Some(weights) => edge_entropy(weights, flat),
                None => 1.0,
            };
            (score * cum as f64) as i64 + flat
        };
        let mut keyed: Vec<(i64, String, u32)> =
            self.nodes.iter().map(|&n| (score(n).abs(), functions.printable_name(n), n)).collect();
        keyed.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.cmp(&b.1))
                .then_with(|| self.flat[b.2 as usize].abs().cmp(&self.flat[a.2 as usize].abs()))
                .then_with(|| functions.infos[a.2 as usize].file.cmp(&functions.infos[b.2 as usize].file))
        });
        self.nodes = keyed.into_iter().map(|(_, _, n)| n).collect();
    }

    /// Edges heaviest first, then by source and destination name.
    fn sorted_edges(&self, functions: &Functions) -> Vec<((u32, u32), Edge)> {
        let mut edges: Vec<((u32, u32), Edge)> = self.edges.iter().map(|(&k, &e)| (k, e)).collect();
        edges.sort_by(|a, b| {
            b.1.weight
                .abs()
                .cmp(&a.1.weight.abs())
                .then_with(|| functions.printable_name(a.0.0).cmp(&functions.printable_name(b.0.0)))
                .then_with(|| functions.printable_name(a.0.1).cmp(&functions.printable_name(b.0.1)))
        });
        edges
    }

    /// Drops residual edges whose destination is reachable from their source
    /// another way, lightest first, stopping at a node's first real edge.
    fn remove_redundant_edges(&mut self, functions: &Functions) {
        let mut sources: FastMap<u32, Vec<u32>> = FastMap::default();
        for &(src, dst) in self.edges.keys() {
            sources.entry(dst).or_default().push(src);
        }
        for i in (0..self.nodes.len()).rev() {
            let n = self.nodes[i];
            let mut incoming: Vec<(u32, Edge)> =
                sources.get(&n).map_or(&[][..], Vec::as_slice).iter().map(|&s| (s, self.edges[&(s, n)])).collect();
            incoming.sort_by(|a, b| {
                b.1.weight
                    .abs()
                    .cmp(&a.1.weight.abs())
                    .then_with(|| functions.printable_name(a.0).cmp(&functions.printable_name(b.0)))
            });
            for (src, e) in incoming.into_iter().rev() {
                if !e.residual {
                    break;
                }
                if reachable_without(&sources, src, n) {
                    self.edges.remove(&(src, n));
                    if let Some(s) = sources.get_mut(&n) {
                        s.retain(|&x| x != src);
                    }
                }
            }
        }
    }
}

/// Whether `src` reaches `dst` (walking `sources`, the callers of each node)
/// other than by the direct edge.
fn reachable_without(sources: &FastMap<u32, Vec<u32>>, src: u32, dst: u32) -> bool {
    let mut seen: FastSet<u32> = FastSet::default();
    seen.insert(dst);
    let mut queue = vec![dst];
    while let Some(n) = queue.pop() {
        for &s in sources.get(&n).map_or(&[][..], Vec::as_slice) {
            if (n == dst && s == src) || !seen.insert(s) {
                continue;
            }
            if s == src {
                return true;
            }
            queue.push(s);
        }
    }
    false
}

/// Shannon entropy of the edge weights (plus `own` weight), in bits.
fn edge_entropy(weights: &[i64], own: i64) -> f64 {
    let total = own + weights.iter().filter(|&&w| w > 0).map(|w| w.abs()).sum::<i64>();
    if total == 0 {
        return 0.0;
    }
    let term = |w: i64| {
        let frac = w.abs() as f64 / total as f64;
        if frac == 0.0 { 0.0 } else { -frac * libm::log2(frac) }
    };
    weights.iter().map(|&w| term(w)).sum::<f64>() + if own > 0 { term(own) } else { 0.0 }
}

/// pprof's function name shortening: package paths, Java packages and C++
/// namespaces are dropped (the label must stay readable).
struct Shortener {
    cpp_anonymous: Regex,
    go_version: Regex,
    patterns: [Regex; 3],
}

impl Shortener {
    fn new() -> Self {
        const W: &str = "[0-9A-Za-z_]";
        let re = |p: &str| Regex::new(&p.replace("\\w", W)).expect("static pattern");
        Self {
            cpp_anonymous: re(r"^\(anonymous namespace\)::"),
            go_version: re(r"^(.*?)/v(?:[2-9]|[1-9][0-9]+)([./].*)$"),
            patterns: [
                re(r"^(?:[\w\-\.]+/)+([^.]+\..+)"),
                re(r"^(?:[a-z]\w*\.)*([A-Z][\w\$]*\.(?:<init>|[a-z][\w\$]*(?:\$\d+)?))(?:\(|$)"),
                re(r"^(?:[_a-zA-Z]\w*::)+(_*[A-Z]\w*::~?[_a-zA-Z]\w*(?:<.*>)?)"),
            ],
        }
    }

    fn shorten(&self, name: &str) -> String {
        let mut f = match self.cpp_anonymous.find(name) {
            Some(m) => name[m.end()..].to_string(),
            None => name.to_string(),
        };
        let mut caps = self.go_version.create_captures();
        self.go_version.captures(&f, &mut caps);
        if let (Some(a), Some(b)) = (caps.get_group(1), caps.get_group(2)) {
            f = format!("{}{}", &f[a.range()], &f[b.range()]);
        }
        for re in &self.patterns {
            let mut caps = re.create_captures();
            re.captures(&f, &mut caps);
            if let Some(g) = caps.get_group(1) {
                return f[g.range()].to_string();
            }
        }
        f
    }
}

/// Escapes a string for a quoted DOT attribute; a newline becomes a
/// left-justified line break.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\l")
}

fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().filter(|b| !b.is_empty()).unwrap_or(if path.is_empty() { "" } else { "/" })
}

/// Go's `filepath.Clean` for the common cases: repeated and trailing
/// slashes, `.` segments and `..` after a named segment.
fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn ratio(v: i64, total: i64) -> f64 {
    if total == 0 { 0.0 } else { v as f64 / total.abs() as f64 }
}

/// A value in the sample unit scaled for reading: nanoseconds as seconds,
/// bytes as bytes, anything else as a plain number.
fn scaled_label(v: i64, unit: &str) -> String {
    let sniffed = if unit.len() > 2 { unit.strip_suffix('s').unwrap_or(unit) } else { unit };
    let (scaled, suffix) = match sniffed {
        "b" | "byte" => (v as f64, "B"),
        "kb" | "kbyte" | "kilobyte" => (v as f64 * 1024.0, "B"),
        "mb" | "mbyte" | "megabyte" => (v as f64 * 1_048_576.0, "B"),
        "ns" | "nanosecond" => (v as f64 / 1e9, "s"),
        "μs" | "us" | "microsecond" => (v as f64 / 1e6, "s"),
        "ms" | "millisecond" => (v as f64 / 1e3, "s"),
        "s" | "sec" | "second" => (v as f64, "s"),
        _ => (v as f64, ""),
    };
    let mut text = format!("{scaled:.2}");
    if let Some(whole) = text.strip_suffix(".00") {
        text = whole.into();
    }
    if text == "0" || text == "-0" {
        return "0".into();
    }
    text + suffix
}

/// `12.50%`, `100%`, or two significant digits below 1% (Go's `%5.2g`).
fn percentage(v: i64, total: i64) -> String {
    let r = if total == 0 { 0.0 } else { (v as f64 / total as f64).abs() * 100.0 };
    if (99.95..=100.05).contains(&r) {
        return "  100%".into();
    }
    if r >= 1.0 {
        return format!("{r:5.2}%");
    }
    format!("{:>5}%", two_significant(r))
}

/// Go's `%.2g` for `0 ≤ r < 1`.
fn two_significant(r: f64) -> String {
    if r == 0.0 {
        return "0".into();
    }
    let sci = format!("{r:.1e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    if exp < -4 {
        return format!("{mantissa}e-{:02}", -exp);
    }
    let fixed = format!("{r:.*}", (1 - exp) as usize);
    fixed.trim_end_matches('0').trim_end_matches('.').into()
}

/// pprof's node color: grey for small shares, shifting to red as `score`
/// (a share of the total, −1..1) grows; light for backgrounds.
fn color(score: f64, background: bool) -> String {
    const SHIFT: f64 = 0.7;
    let (mut saturation, value) = if background { (0.1, 0.93) } else { (1.0, 0.7) };
    let mut score = score.clamp(-1.0, 1.0);
    if score.abs() < 0.2 {
        saturation *= score.abs() / 0.2;
    }
    if score > 0.0 {
        score = libm::pow(score, 1.0 - SHIFT);
    } else if score < 0.0 {
        score = -libm::pow(-score, 1.0 - SHIFT);
    }
    let (r, g) = if score < 0.0 {
        (value * (1.0 + saturation * score), value)
    } else {
        (value, value * (1.0 - saturation * score))
    };
    let b = value * (1.0 - saturation);
    format!("#{:02x}{:02x}{:02x}", (r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

/// Go's `Jan 2, 2006 at 3:04pm (MST)` in UTC.
fn clock_label(nanos: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = nanos.div_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let (h, min) = (of_day / 3600, of_day / 60 % 60);
    let (h12, half) = (if h % 12 == 0 { 12 } else { h % 12 }, if h < 12 { "am" } else { "pm" });
    format!("{} {d}, {y} at {h12}:{min:02}{half} (UTC)", MONTHS[m as usize - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::tests::profile_of;

    fn lines_with<'a>(dot: &'a str, needle: &str) -> Vec<&'a str> {
        dot.lines().filter(|l| l.contains(needle)).collect()
    }

    #[test]
    fn nodes_edges_and_legend() {
        let p = profile_of(&[
            ("main;work;leaf", 6_000_000_000),
            ("main;work", 2_000_000_000),
            ("main;idle", 2_000_000_000),
        ]);
        let out = dot(&p, 100);
        assert!(out.starts_with("digraph \"unnamed\" {\nnode [style=filled fillcolor=\"#f8f8f8\"]\n"), "{out}");
        assert!(out.ends_with("}\n"));
        assert!(out.contains(
            "label=\"Type: cpu\\lShowing nodes accounting for 10s, 100% of 10s total\\l\\lSee https://git.io/JfYMW for how to read the graph\\l\""
        ), "{out}");
        let leaf = lines_with(&out, "label=\"leaf\\n6s (60.00%)\"");
        assert_eq!(leaf.len(), 1, "{out}");
        assert!(leaf[0].contains("fontsize=24"), "largest flat: largest font");
        let main = lines_with(&out, "label=\"main\\n0 of 10s (100%)\"");
        assert_eq!(main.len(), 1, "{out}");
        assert!(main[0].contains("fontsize=8 shape=box tooltip=\"main (10s)\""));
        let work = lines_with(&out, "label=\"work\\n2s (20.00%)\\nof 8s (80.00%)\"");
        assert_eq!(work.len(), 1, "{out}");
        // Edges, heaviest first.
        let edges: Vec<&str> = out.lines().filter(|l| l.contains(" -> N")).collect();
        assert_eq!(edges.len(), 3);
        assert!(edges[0].contains("label=\" 8s\" weight=81 penwidth=5"), "{}", edges[0]);
        assert!(edges[0].contains("tooltip=\"main -> work (8s)\""));
        assert!(edges[1].contains("tooltip=\"work -> leaf (6s)\""));
        assert!(edges[2].contains("tooltip=\"main -> idle (2s)\""));
    }

    #[test]
    fn trimming_keeps_the_top_nodes_with_residual_edges() {
        let p = profile_of(&[("main;mid;leaf", 9), ("main;other1", 1)]);
        let out = dot(&p, 2);
        assert!(out.contains("Showing top 2 nodes out of 4"), "{out}");
        assert_eq!(out.lines().filter(|l| l.starts_with('N') && !l.contains("->")).count(), 2, "{out}");
        let edges: Vec<&str> = out.lines().filter(|l| l.contains(" -> N")).collect();
        assert_eq!(edges.len(), 1, "{out}");
        assert!(edges[0].contains("main ... leaf") && edges[0].contains("style=\"dotted\""), "{}", edges[0]);
    }

    #[test]
    fn recursion_counts_once_per_sample() {
        let p = profile_of(&[("a;b;a;b", 4_000_000_000)]);
        let out = dot(&p, 100);
        assert!(out.contains("label=\"a\\n0 of 4s (100%)\""), "{out}");
        assert!(out.contains("label=\"b\\n4s (100%)\""), "{out}");
        assert!(out.contains("tooltip=\"a -> b (4s)\""), "{out}");
        assert!(out.contains("tooltip=\"b -> a (4s)\""), "{out}");
    }

    #[test]
    fn escaping_and_empty_profiles() {
        let p = profile_of(&[("say \"hi\"\\now", 1_000_000_000)]);
        let out = dot(&p, 100);
        assert!(out.contains("tooltip=\"say \\\"hi\\\"\\\\now (1s)\""), "{out}");
        let empty = dot(&Profile::default(), 100);
        assert!(empty.contains("Showing nodes accounting for 0, 0% of 0 total"), "{empty}");
    }

    #[test]
    fn values_and_names() {
        assert_eq!(scaled_label(1_500_000_000, "nanoseconds"), "1.50s");
        assert_eq!(scaled_label(2_000_000_000, "nanoseconds"), "2s");
        assert_eq!(scaled_label(4096, "bytes"), "4096B");
        assert_eq!(scaled_label(42, "count"), "42");
        assert_eq!(scaled_label(0, "nanoseconds"), "0");
        assert_eq!(percentage(1, 3).trim(), "33.33%");
        assert_eq!(percentage(1, 200).trim(), "0.5%");
        assert_eq!(percentage(1, 800).trim(), "0.12%");
        assert_eq!(percentage(1, 10_000_000).trim(), "1e-05%");
        assert_eq!(percentage(0, 10).trim(), "0%");
        assert_eq!(color(0.0, false), "#b2b2b2");
        assert_eq!(color(1.0, false), "#b20000");
        assert_eq!(color(1.0, true), "#edd5d5");
        assert_eq!(clock_label(1_764_061_380_000_000_000), "Nov 25, 2025 at 9:03am (UTC)");
        assert_eq!(clock_label(1_764_100_800_000_000_000), "Nov 25, 2025 at 8:00pm (UTC)");
        let s = Shortener::new();
        assert_eq!(s.shorten("github.com/grafana/pyroscope/v2/pkg/model.(*Tree).Insert"), "model.(*Tree).Insert");
        assert_eq!(s.shorten("runtime.mallocgc"), "runtime.mallocgc");
        assert_eq!(s.shorten("com.example.Foo.bar(int)"), "Foo.bar");
        assert_eq!(s.shorten("std::vector<int>::push_back"), "std::vector<int>::push_back");
        assert_eq!(s.shorten("(anonymous namespace)::ns::Foo::run"), "Foo::run");
        assert_eq!(clean_path("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(base_name("/src/app/main.go"), "main.go");
    }
}
