// Flame graph model and canvas renderer.
//
// The model decodes Pyroscope's flame graph JSON once into per-level typed
// arrays (absolute x, total, self, name index, parent index) so that zoom,
// hover and search never touch the JSON again: a draw walks only the nodes of
// each level that intersect the visible range (found by binary search), and a
// hit test is one binary search on one level.

import { fitCanvas } from "./canvas.js";
import { formatValue, percent } from "./format.js";

const ROW = 18; // CSS pixels per level
const FONT = '12px ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

/// Decodes `{names, levels:[{values}], total, ...}`. `diff` selects the
/// 7-integer layout of the Diff API (left x delta, total, self; right x
/// delta, total, self; name); the combined frame spans both sides.
export function decodeFlamegraph(fg, { diff = false, unit = "" } = {}) {
  const stride = diff ? 7 : 4;
  const names = fg.names || [];
  const levels = [];
  for (const level of fg.levels || []) {
    const v = level.values || [];
    const n = Math.floor(v.length / stride);
    const lv = {
      n,
      x: new Float64Array(n),
      total: new Float64Array(n),
      self: new Float64Array(n),
      name: new Uint32Array(n),
      parent: new Int32Array(n),
    };
    if (diff) {
      lv.leftTotal = new Float64Array(n);
      lv.leftSelf = new Float64Array(n);
      lv.rightTotal = new Float64Array(n);
      lv.rightSelf = new Float64Array(n);
    }
    let end = 0;
    let endL = 0;
    let endR = 0;
    for (let i = 0, o = 0; i < n; i++, o += stride) {
      if (diff) {
        const lx = endL + Number(v[o]);
        const lt = Number(v[o + 1]);
        const rx = endR + Number(v[o + 3]);
        const rt = Number(v[o + 4]);
        endL = lx + lt;
        endR = rx + rt;
        lv.x[i] = lx + rx;
        lv.total[i] = lt + rt;
        lv.leftTotal[i] = lt;
        lv.leftSelf[i] = Number(v[o + 2]);
        lv.rightTotal[i] = rt;
        lv.rightSelf[i] = Number(v[o + 5]);
        lv.self[i] = lv.leftSelf[i] + lv.rightSelf[i];
        lv.name[i] = Number(v[o + 6]);
      } else {
        const x = end + Number(v[o]);
        const t = Number(v[o + 1]);
        end = x + t;
        lv.x[i] = x;
        lv.total[i] = t;
        lv.self[i] = Number(v[o + 2]);
        lv.name[i] = Number(v[o + 3]);
      }
    }
    levels.push(lv);
  }
  // Parents: both levels are sorted by x and children lie inside their
  // parent's span, so one merge-like sweep per level finds them all.
  for (let l = 1; l < levels.length; l++) {
    const up = levels[l - 1];
    const lv = levels[l];
    let p = 0;
    for (let i = 0; i < lv.n; i++) {
      while (p < up.n - 1 && up.x[p] + up.total[p] <= lv.x[i] && up.x[p + 1] <= lv.x[i]) p++;
      lv.parent[i] = p;
    }
  }
  if (levels.length) levels[0].parent.fill(-1);
  const leftTicks = diff ? Number(fg.leftTicks || 0) : 0;
  const rightTicks = diff ? Number(fg.rightTicks || 0) : 0;
  const total = diff ? leftTicks + rightTicks : Number(fg.total || (levels[0] ? levels[0].total[0] : 0));
  let nodes = 0;
  for (const lv of levels) nodes += lv.n;
  return { names, levels, total, diff, leftTicks, rightTicks, unit, nodes };
}

/// Sum of the totals of nodes whose name matches, not counting a node whose
/// ancestor already matched (its total is inside the ancestor's).
export function matchTotals(model, nameMatches) {
  let sum = 0;
  let prev = null;
  const flags = [];
  for (const lv of model.levels) {
    const hit = new Uint8Array(lv.n); // 1 = matches, 2 = under a match
    for (let i = 0; i < lv.n; i++) {
      const inherited = prev && lv.parent[i] >= 0 && prev[lv.parent[i]] ? 2 : 0;
      if (nameMatches[lv.name[i]]) {
        hit[i] = 1;
        if (!inherited) sum += lv.total[i];
      } else if (inherited) {
        hit[i] = 2;
      }
    }
    flags.push(hit);
    prev = hit;
  }
  return { sum, flags };
}

// Colours: a hue per package (hash of the name's package part), pastel so
// that dark text stays legible.
function packageOf(name) {
  const paren = name.indexOf("(");
  const head = paren > 0 ? name.slice(0, paren) : name;
  const colons = head.lastIndexOf("::");
  if (colons > 0) return head.slice(0, colons);
  const slash = head.lastIndexOf("/");
  if (slash >= 0) {
    const dot = head.indexOf(".", slash + 1);
    return dot > 0 ? head.slice(0, dot) : head;
  }
  const dots = head.split(".");
  if (dots.length > 2) return dots.slice(0, -1).join(".");
  return dots[0];
}

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export function colorOf(name) {
  if (name === "total" || name === "other") return "hsl(220, 8%, 80%)";
  const h = hash(packageOf(name));
  const hue = h % 360;
  const light = 70 + ((h >>> 9) % 10);
  return `hsl(${hue}, 62%, ${light}%)`;
}

// Diff palette: green (less, right vs left) through neutral grey to red (more).
const DIFF_STEPS = 10;
const DIFF_RED = [];
const DIFF_GREEN = [];
for (let s = 0; s <= DIFF_STEPS; s++) {
  const t = s / DIFF_STEPS;
  const mix = (a, b) => Math.round(a + (b - a) * t);
  DIFF_RED.push(`rgb(${mix(214, 232)},${mix(214, 70)},${mix(214, 70)})`);
  DIFF_GREEN.push(`rgb(${mix(214, 60)},${mix(214, 180)},${mix(214, 90)})`);
}

/// Relative change of a frame's share from left to right, in percent: the
/// self share when either side has self, else the total share. Infinity for
/// a frame new on the right, -100 for one gone.
export function diffChange(model, lv, i) {
  const useSelf = lv.leftSelf[i] > 0 || lv.rightSelf[i] > 0;
  const l = (useSelf ? lv.leftSelf[i] : lv.leftTotal[i]) / (model.leftTicks || 1);
  const r = (useSelf ? lv.rightSelf[i] : lv.rightTotal[i]) / (model.rightTicks || 1);
  if (l === 0) return r === 0 ? 0 : Infinity;
  return ((r - l) / l) * 100;
}

export function diffColor(change) {
  if (!Number.isFinite(change)) return change > 0 ? DIFF_RED[DIFF_STEPS] : DIFF_GREEN[DIFF_STEPS];
  const step = Math.min(DIFF_STEPS, Math.round((Math.abs(change) / 100) * DIFF_STEPS));
  return change >= 0 ? DIFF_RED[step] : DIFF_GREEN[step];
}

/// A frame's label in at most `chars` characters: the end of a long name
/// (the function, not the package) is the part worth keeping, once a Rust
/// symbol's hash suffix has been dropped.
function fitLabel(name, chars) {
  if (name.length <= chars) return name;
  const short = name.replace(/::h[0-9a-f]{16}$/, "");
  if (short.length <= chars) return short;
  return "…" + short.slice(short.length - chars + 1);
}

export class FlameGraph {
  /// `inverted`: level 0 at the bottom (the callers half of a sandwich).
  /// `onOpen(name)`: a frame was double-clicked.
  constructor(canvas, { tooltip, inverted = false, onChange, onOpen } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.tooltip = tooltip;
    this.inverted = inverted;
    this.onChange = onChange || (() => {});
    this.onOpen = onOpen;
    this.model = null;
    this.range = [0, 0];
    this.focusLevel = 0;
    this.flags = null;
    this.searchSum = 0;
    this.drawn = { level: new Int32Array(0), index: new Int32Array(0), px: new Float32Array(0), w: new Float32Array(0), n: 0 };
    this.colors = [];
    canvas.addEventListener("mousemove", (e) => this.onMove(e));
    canvas.addEventListener("mouseleave", () => this.hideTooltip());
    canvas.addEventListener("click", (e) => this.onClick(e));
    canvas.addEventListener("dblclick", (e) => {
      const h = this.hit(...this.point(e));
      if (h && h.level > 0 && this.onOpen) this.onOpen(this.model.names[this.model.levels[h.level].name[h.index]]);
    });
    this.resizeObserver = new ResizeObserver(() => this.schedule());
    this.resizeObserver.observe(canvas.parentElement);
  }

  setModel(model) {
    this.model = model;
    this.colors = new Array(model ? model.names.length : 0);
    this.range = [0, model ? model.total : 0];
    this.focusLevel = 0;
    if (this.query) this.search(this.query);
    else this.flags = null;
    this.hideTooltip();
    this.draw();
    this.onChange();
  }

  /// Highlights frames whose name contains `query` (case-insensitive) and
  /// returns the sum of matched totals.
  search(query) {
    this.query = query || "";
    this.flags = null;
    this.searchSum = 0;
    if (this.model && this.query) {
      const q = this.query.toLowerCase();
      const matches = this.model.names.map((n) => n.toLowerCase().includes(q));
      matches[0] = false;
      const { sum, flags } = matchTotals(this.model, matches);
      this.flags = flags;
      this.searchSum = sum;
    }
    this.draw();
    return this.searchSum;
  }

  zoomNode(level, i) {
    const lv = this.model.levels[level];
    if (level === 0) return this.reset();
    this.range = [lv.x[i], lv.x[i] + lv.total[i]];
    this.focusLevel = level;
    this.hideTooltip();
    this.draw();
    this.onChange();
  }

  reset() {
    if (!this.model) return;
    this.range = [0, this.model.total];
    this.focusLevel = 0;
    this.draw();
    this.onChange();
  }

  get zoomed() {
    return this.focusLevel > 0;
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  colorFor(lv, i) {
    const m = this.model;
    if (m.diff) return diffColor(diffChange(m, lv, i));
    const id = lv.name[i];
    return this.colors[id] || (this.colors[id] = colorOf(m.names[id]));
  }

  draw() {
    const canvas = this.canvas;
    const ctx = this.ctx;
    const width = Math.max(100, canvas.parentElement.clientWidth);
    const m = this.model;
    const depth = m ? m.levels.length : 0;
    const height = Math.max(ROW, depth * ROW);
    fitCanvas(canvas, ctx, width, height);
    this.cssWidth = width;
    this.cssHeight = height;
    if (!m || !m.total) {
      this.drawn.n = 0;
      return;
    }
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    if (!this.charWidth) this.charWidth = ctx.measureText("M").width || 7;
    const [x0, x1] = this.range;
    const k = width / (x1 - x0 || 1);
    this.ensureDrawnCapacity(m.nodes);
    const d = this.drawn;
    let count = 0;
    for (let l = 0; l < depth; l++) {
      const lv = m.levels[l];
      const y = this.inverted ? height - (l + 1) * ROW : l * ROW;
      const flags = this.flags ? this.flags[l] : null;
      const faded = l < this.focusLevel;
      for (let i = firstEndingAfter(lv, x0); i < lv.n && lv.x[i] < x1; i++) {
        const a = Math.max(0, (lv.x[i] - x0) * k);
        const b = Math.min(width, (lv.x[i] + lv.total[i] - x0) * k);
        const w = b - a;
        if (w < 1) continue;
        let color = this.colorFor(lv, i);
        if (flags && flags[i] !== 1) color = "hsl(220, 10%, 90%)";
        ctx.globalAlpha = faded ? 0.55 : 1;
        ctx.fillStyle = color;
        ctx.fillRect(a, y, w > 2 ? w - 1 : w, ROW - 1);
        const chars = Math.floor((w - 6) / this.charWidth);
        if (chars >= 3) {
          const label = fitLabel(m.names[lv.name[i]], chars);
          ctx.fillStyle = flags && flags[i] !== 1 ? "#8a8f99" : "#1b1d22";
          ctx.fillText(label, a + 3, y + ROW / 2);
        }
        d.level[count] = l;
        d.index[count] = i;
        d.px[count] = a;
        d.w[count] = w;
        count++;
      }
    }
    ctx.globalAlpha = 1;
    d.n = count;
  }

  ensureDrawnCapacity(n) {
    if (this.drawn.level.length >= n) return;
    this.drawn = {
      level: new Int32Array(n),
      index: new Int32Array(n),
      px: new Float32Array(n),
      w: new Float32Array(n),
      n: 0,
    };
  }

  frameInfo(l, i, px, w) {
    const m = this.model;
    const lv = m.levels[l];
    const f = { name: m.names[lv.name[i]], total: lv.total[i], self: lv.self[i], level: l, x: px, width: w };
    if (m.diff) {
      f.leftTotal = lv.leftTotal[i];
      f.leftSelf = lv.leftSelf[i];
      f.rightTotal = lv.rightTotal[i];
      f.rightSelf = lv.rightSelf[i];
      f.change = diffChange(m, lv, i);
      f.color = diffColor(f.change);
    } else {
      f.color = this.colorFor(lv, i);
    }
    if (this.flags) f.match = this.flags[l][i] === 1;
    return f;
  }

  /// What the last draw put on the canvas (CSS pixels).
  frames() {
    const d = this.drawn;
    const out = [];
    for (let j = 0; j < d.n; j++) out.push(this.frameInfo(d.level[j], d.index[j], d.px[j], d.w[j]));
    return out;
  }

  /// The drawn frame of that name with the largest total, or null.
  frameAt(name) {
    const d = this.drawn;
    let best = -1;
    for (let j = 0; j < d.n; j++) {
      const lv = this.model.levels[d.level[j]];
      if (this.model.names[lv.name[d.index[j]]] !== name) continue;
      if (best < 0 || lv.total[d.index[j]] > this.model.levels[d.level[best]].total[d.index[best]]) best = j;
    }
    return best < 0 ? null : this.frameInfo(d.level[best], d.index[best], d.px[best], d.w[best]);
  }

  /// Zooms into the node of that name with the largest total; false if none.
  zoom(name) {
    if (!this.model) return false;
    const id = this.model.names.indexOf(name);
    if (id < 0) return false;
    let best = null;
    this.model.levels.forEach((lv, l) => {
      for (let i = 0; i < lv.n; i++) {
        if (lv.name[i] === id && (!best || lv.total[i] > best.total)) best = { level: l, index: i, total: lv.total[i] };
      }
    });
    if (!best) return false;
    this.zoomNode(best.level, best.index);
    return true;
  }

  /// The drawn node under a CSS-pixel point, or null.
  hit(px, py) {
    const m = this.model;
    if (!m) return null;
    const row = Math.floor(py / ROW);
    const l = this.inverted ? Math.floor((this.cssHeight - py) / ROW) : row;
    if (l < 0 || l >= m.levels.length) return null;
    const lv = m.levels[l];
    const [x0, x1] = this.range;
    const xv = x0 + (px / this.cssWidth) * (x1 - x0);
    const i = firstEndingAfter(lv, xv);
    if (i >= lv.n || lv.x[i] > xv) return null;
    const k = this.cssWidth / (x1 - x0 || 1);
    const a = Math.max(0, (lv.x[i] - x0) * k);
    const w = Math.min(this.cssWidth, (lv.x[i] + lv.total[i] - x0) * k) - a;
    if (w < 1) return null;
    return { level: l, index: i, px: a, w };
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  onClick(e) {
    const h = this.hit(...this.point(e));
    if (h) this.zoomNode(h.level, h.index);
  }

  onMove(e) {
    const h = this.hit(...this.point(e));
    if (!h) return this.hideTooltip();
    this.canvas.style.cursor = "pointer";
    this.showTooltip(this.frameInfo(h.level, h.index, h.px, h.w), e.clientX, e.clientY);
  }

  showTooltip(f, cx, cy) {
    const t = this.tooltip;
    if (!t) return;
    const m = this.model;
    const unit = m.unit;
    const rows = [];
    if (m.diff) {
      rows.push(["Left total", `${formatValue(f.leftTotal, unit)} (${percent(f.leftTotal, m.leftTicks)})`]);
      rows.push(["Left self", `${formatValue(f.leftSelf, unit)} (${percent(f.leftSelf, m.leftTicks)})`]);
      rows.push(["Right total", `${formatValue(f.rightTotal, unit)} (${percent(f.rightTotal, m.rightTicks)})`]);
      rows.push(["Right self", `${formatValue(f.rightSelf, unit)} (${percent(f.rightSelf, m.rightTicks)})`]);
      const c = f.change;
      rows.push(["Change", Number.isFinite(c) ? `${c >= 0 ? "+" : ""}${c.toFixed(1)}%` : c > 0 ? "new" : "removed"]);
    } else {
      rows.push(["Total", `${formatValue(f.total, unit)} (${percent(f.total, m.total)} of root)`]);
      rows.push(["Self", `${formatValue(f.self, unit)} (${percent(f.self, m.total)} of root)`]);
    }
    t.replaceChildren();
    const title = document.createElement("div");
    title.className = "tt-name";
    title.textContent = f.name;
    t.append(title);
    const table = document.createElement("table");
    for (const [k, v] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = v;
    }
    t.append(table);
    if (this.onOpen && !m.diff) {
      const hint = document.createElement("div");
      hint.className = "tt-hint";
      hint.textContent = "click to zoom · double-click for callers and callees";
      t.append(hint);
    }
    t.hidden = false;
    t.dataset.name = f.name;
    const pad = 14;
    const tw = t.offsetWidth;
    const th = t.offsetHeight;
    let left = cx + pad;
    let top = cy + pad;
    if (left + tw > window.innerWidth - 4) left = Math.max(4, cx - tw - pad);
    if (top + th > window.innerHeight - 4) top = Math.max(4, cy - th - pad);
    t.style.left = `${left}px`;
    t.style.top = `${top}px`;
  }

  hideTooltip() {
    this.canvas.style.cursor = "";
    if (this.tooltip) this.tooltip.hidden = true;
  }
}

/// Index of the first node of a level whose span ends after x (nodes are
/// sorted by x and do not overlap), or the level's length if none does.
function firstEndingAfter(lv, x) {
  let lo = 0;
  let hi = lv.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (lv.x[mid] + lv.total[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
