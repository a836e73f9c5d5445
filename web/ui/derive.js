// Top functions and sandwich trees computed from a decoded flame graph, for
// data that only arrives as a flame graph (server mode); files use the wasm
// core's own top() and sandwich(), which see the untruncated profile.

import { decodeFlamegraph } from "./flamegraph.js";

/// True if an ancestor of node (l, i) has the same name id.
function underSameName(model, l, i) {
  const id = model.levels[l].name[i];
  let p = model.levels[l].parent[i];
  for (let k = l - 1; k > 0 && p >= 0; k--) {
    if (model.levels[k].name[p] === id) return true;
    p = model.levels[k].parent[p];
  }
  return false;
}

export function topFromModel(model) {
  const rows = new Map();
  for (let l = 1; l < model.levels.length; l++) {
    const lv = model.levels[l];
    for (let i = 0; i < lv.n; i++) {
      const name = model.names[lv.name[i]];
      let row = rows.get(name);
      if (!row) rows.set(name, (row = { name, self: 0, total: 0 }));
      row.self += lv.self[i];
      if (!underSameName(model, l, i)) row.total += lv.total[i];
    }
  }
  return [...rows.values()].sort((a, b) => b.self - a.self || b.total - a.total);
}

function childrenIndex(model) {
  // For each level, the range of child indices on the next level (children
  // are contiguous there, in the order of their parents).
  return model.levels.map((lv, l) => {
    const next = model.levels[l + 1];
    const start = new Int32Array(lv.n).fill(0);
    const end = new Int32Array(lv.n).fill(0);
    if (next) {
      for (let j = next.n - 1; j >= 0; j--) start[next.parent[j]] = j;
      for (let j = 0; j < next.n; j++) end[next.parent[j]] = j + 1;
    }
    return { start, end };
  });
}

function node(name) {
  return { name, total: 0, self: 0, children: new Map() };
}

function child(parent, name) {
  let c = parent.children.get(name);
  if (!c) parent.children.set(name, (c = node(name)));
  return c;
}

/// A JS tree as flame graph JSON ({names, levels, total}), children sorted
/// by name and laid out left to right from their parent's x.
export function treeToFlamegraph(root) {
  const names = ["total"];
  const nameIds = new Map([["total", 0]]);
  const levels = [];
  const visit = (n, depth, x) => {
    let id = nameIds.get(n.name);
    if (id === undefined) {
      id = names.length;
      names.push(n.name);
      nameIds.set(n.name, id);
    }
    if (!levels[depth]) levels[depth] = { values: [], end: 0 };
    const lv = levels[depth];
    lv.values.push(x - lv.end, n.total, n.self, id);
    lv.end = x + n.total;
    let cx = x;
    for (const c of [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      visit(c, depth + 1, cx);
      cx += c.total;
    }
  };
  visit(root, 0, 0);
  return { names, levels: levels.map((l) => ({ values: l.values })), total: root.total };
}

export function sandwichFromModel(model, name) {
  const id = model.names.indexOf(name);
  const callers = node("total");
  const callees = node("total");
  if (id > 0) {
    const kids = childrenIndex(model);
    const copy = (into, l, i) => {
      const lv = model.levels[l];
      into.total += lv.total[i];
      into.self += lv.self[i];
      for (let j = kids[l].start[i]; j < kids[l].end[i]; j++) {
        copy(child(into, model.names[model.levels[l + 1].name[j]]), l + 1, j);
      }
    };
    for (let l = 1; l < model.levels.length; l++) {
      const lv = model.levels[l];
      for (let i = 0; i < lv.n; i++) {
        if (lv.name[i] !== id || underSameName(model, l, i)) continue;
        const value = lv.total[i];
        callees.total += value;
        copy(child(callees, name), l, i);
        callers.total += value;
        let at = callers;
        let k = l;
        let p = i;
        while (k > 0) {
          at = child(at, model.names[model.levels[k].name[p]]);
          at.total += value;
          p = model.levels[k].parent[p];
          k--;
        }
        at.self += value;
      }
    }
  }
  return {
    callers: decodeFlamegraph(treeToFlamegraph(callers), { unit: model.unit }),
    callees: decodeFlamegraph(treeToFlamegraph(callees), { unit: model.unit }),
  };
}
