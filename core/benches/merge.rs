//! Merge at scale: 3 M distinct stacks spanning 10 M call-tree nodes (as
//! stored: a name tree with summed values per stack node) merged into a
//! `StackTree` and rendered as a flame graph, on one core.
//!
//! Run: `cargo bench -p kiln-core --bench merge`

use std::time::{Duration, Instant};

use kiln_core::flamegraph::flamegraph;
use kiln_core::name_tree::NameTree;
use kiln_core::tree::StackTree;

const NODES: usize = 10_000_000;
const NAMES: u32 = 50_000;
const RUNS: usize = 3;

/// xorshift64: deterministic input without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A name tree of `NODES` nodes, one stack node per tree node, where mostly
/// each node extends the previous one (deep stacks) and otherwise branches
/// off a recent node; every leaf is a sampled stack.
fn input() -> (NameTree, Vec<i64>, usize) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut names = NameTree::default();
    for i in 0..NAMES {
        names.names.extend_from_slice(
            format!("github.com/org/service/pkg{}.(*Type{}).Method{}", i % 97, i % 13, i).as_bytes(),
        );
        names.name_ends.push(names.names.len() as u32);
    }
    let mut has_child = vec![false; NODES + 1];
    // Children per node so far: siblings get distinct names, as in a real
    // name tree (one node per name path).
    let mut child_count = vec![0u32; NODES + 1];
    let mut node_name = vec![0u32; NODES + 1];
    for k in 1..=NODES {
        let parent =
            if k == 1 || rng.next() % 100 < 53 { k - 1 } else { k - 1 - (rng.next() as usize % (k - 1).min(1000)) };
        has_child[parent] = true;
        let name = (node_name[parent] + 7919 * (child_count[parent] + 1)) % NAMES;
        child_count[parent] += 1;
        node_name[k] = name;
        names.parents.push(parent as u32);
        names.name_ids.push(name);
        names.stack_nodes.push(k as u32);
    }
    let mut values = vec![0i64; NODES + 1];
    let mut stacks = 0;
    for k in 1..=NODES {
        if !has_child[k] {
            values[k] = 1 + (rng.next() % 100) as i64;
            stacks += 1;
        }
    }
    (names, values, stacks)
}

fn main() {
    let (names, values, stacks) = input();
    let expected: i64 = values.iter().sum();
    let mut merge_times = Vec::new();
    let mut remerge_times = Vec::new();
    let mut graph_times = Vec::new();
    let mut tree_nodes = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut tree = StackTree::with_capacity(NODES);
        names.merge_into(&values, &mut tree);
        merge_times.push(t.elapsed());
        let t = Instant::now();
        let graph = flamegraph(&tree, 8192);
        graph_times.push(t.elapsed());
        assert_eq!(graph.total, expected, "the truncated flame graph keeps the exact total");
        tree_nodes = tree.node_count();
        // The same stacks again (a second profile of the same program): now
        // every frame is looked up in the populated tree.
        let t = Instant::now();
        names.merge_into(&values, &mut tree);
        remerge_times.push(t.elapsed());
        assert_eq!(tree.node_count(), tree_nodes);
        assert_eq!(tree.total(), 2 * expected);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let (merge, remerge, graph) = (median(merge_times), median(remerge_times), median(graph_times));
    println!("input: {stacks} distinct stacks, {tree_nodes} tree nodes, {NAMES} function names");
    println!("merge into StackTree:           {merge:>8.1} ms");
    println!("flame graph (max_nodes 8192):   {graph:>8.1} ms");
    println!(
        "total:                          {:>8.1} ms (target < 1000; Pyroscope's tree resolve: 3600)",
        merge + graph
    );
    println!("merge the same stacks again into the populated tree: {remerge:.1} ms (every frame a lookup)");
}
