// kiln's UI: offline (profile files parsed by the wasm core in a Web Worker)
// and, when served by kiln, the server's stored data. One page, four views
// (flame graph, top functions, sandwich, diff) over the current data source.

import { FlameGraph, decodeFlamegraph } from "./flamegraph.js";
import { formatBytes, formatValue, groupDigits, percent } from "./format.js";
import * as api from "./server.js";
import { Timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const MAX_NODES = Number(params.get("maxNodes")) || 8192;
const TABLE_ROWS = 1000;

// ---------------------------------------------------------------- worker RPC

class Core {
  constructor() {
    this.pending = new Map();
    this.next = 1;
    this.failure = null;
    try {
      this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    } catch (err) {
      this.failure = `cannot start the Web Worker: ${err.message}`;
      return;
    }
    this.worker.onmessage = (e) => {
      const { id, ok, result, error, progress } = e.data;
      const p = this.pending.get(id);
      if (!p) return;
      if (progress) return p.onProgress && p.onProgress(progress);
      this.pending.delete(id);
      if (ok) p.resolve(result);
      else p.reject(new Error(error));
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failure = `the wasm core could not be loaded${e.message ? `: ${e.message}` : ""}`;
      for (const p of this.pending.values()) p.reject(new Error(this.failure));
      this.pending.clear();
    };
  }

  call(op, args = {}, onProgress) {
    if (this.failure) return Promise.reject(new Error(this.failure));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args });
    });
  }
}

const core = new Core();

// --------------------------------------------------------------------- state

const state = {
  server: false,
  source: "files", // "files" | "server"
  view: ["flame", "table", "sandwich", "diff"].includes(params.get("view")) ? params.get("view") : "flame",
  files: [], // {id, name, format, size, types, checked}
  typeId: "",
  sandwichName: params.get("function") || "",
  // Server mode: the worker's file holding the selection's merged profile.
  serverFile: null,
  tableSort: { key: "self", dir: "desc" },
  tableRows: [],
  tableRoot: 0,
  // server mode
  service: "",
  serverType: "",
  filters: [], // {name, op, value}
  from: params.get("from") || "now-1h",
  until: params.get("until") || "now",
  compare: params.get("compare") === "1",
  selection: rangeParam("selFrom", "selUntil"),
  left: rangeParam("leftFrom", "leftUntil"),
  right: rangeParam("rightFrom", "rightUntil"),
  generation: 0,
};

function rangeParam(a, b) {
  const from = Number(params.get(a));
  const until = Number(params.get(b));
  return from && until && until > from ? [from, until] : null;
}

// -------------------------------------------------------------------- status

function setStatus(stateName, text) {
  const s = $("status");
  s.dataset.state = stateName;
  s.textContent = text;
  s.title = text;
}

function showProgress(fraction) {
  const p = $("progress");
  if (fraction === null) {
    p.hidden = true;
    return;
  }
  p.hidden = false;
  p.firstElementChild.style.width = `${Math.round(Math.min(1, fraction) * 100)}%`;
}

// -------------------------------------------------------------------- graphs

const tooltip = $("tooltip");
const graphs = {
  main: new FlameGraph($("flamegraph"), {
    tooltip,
    onChange: updateZoomButton,
    onOpen: (name) => state.view === "flame" && openSandwich(name),
  }),
  callers: new FlameGraph($("sandwich-callers"), { tooltip, inverted: true, onChange: updateZoomButton }),
  callees: new FlameGraph($("sandwich-callees"), { tooltip, onChange: updateZoomButton }),
};

function activeGraphs() {
  if (state.view === "sandwich") return [graphs.callers, graphs.callees];
  if (state.view === "flame" || state.view === "diff") return [graphs.main];
  return [];
}

function updateZoomButton() {
  $("reset-zoom").disabled = !activeGraphs().some((g) => g.zoomed);
}

function setRootTotal(total, unit) {
  const el = $("root-total");
  const v = Math.round(total || 0);
  el.textContent = String(v);
  el.dataset.value = String(v);
  $("root-human").textContent = v ? `(${formatValue(v, unit)})` : "";
}

function applySearch() {
  const q = $("search").value.trim();
  let sum = 0;
  const gs = activeGraphs();
  for (const g of Object.values(graphs)) {
    const s = g.search(q);
    if (g === gs[gs.length - 1]) sum = s;
  }
  const el = $("search-total");
  el.dataset.value = String(Math.round(sum));
  const unit = currentUnit();
  const root = gs.length && gs[gs.length - 1].model ? gs[gs.length - 1].model.total : 0;
  el.textContent = q && gs.length ? `matches: ${groupDigits(sum)} (${formatValue(sum, unit)}, ${percent(sum, root)})` : "";
  if (state.view === "table") renderTable();
  syncUrl();
}

// ------------------------------------------------------------------ files UI

function typeUnit(typeId) {
  return (typeId || "").split(":")[2] || "";
}

function currentUnit() {
  return typeUnit(state.source === "server" ? state.serverType : state.typeId);
}

async function addFiles(list) {
  const files = [...list];
  if (!files.length) return;
  let failed = 0;
  let lastError = "";
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  let doneBytes = 0;
  for (const [n, file] of files.entries()) {
    const label = files.length > 1 ? `Loading ${n + 1}/${files.length}: ${file.name}` : `Loading ${file.name}`;
    setStatus("loading", `${label}…`);
    showProgress(doneBytes / (totalBytes || 1));
    const t0 = performance.now();
    try {
      const json = await core.call("load", { file }, ({ phase, done, total }) => {
        const frac = total ? done / total : 0;
        const what = phase === "read" ? `reading ${formatBytes(done)} of ${formatBytes(total)}` : `parsing ${Math.round(frac * 100)}%`;
        setStatus("loading", `${label} — ${what}`);
        const part = phase === "read" ? frac * 0.5 : 0.5 + frac * 0.5;
        showProgress((doneBytes + part * file.size) / (totalBytes || 1));
      });
      const meta = JSON.parse(json);
      meta.size = file.size;
      meta.checked = true;
      meta.ms = performance.now() - t0;
      state.files.push(meta);
    } catch (err) {
      failed++;
      lastError = `${file.name}: ${err.message}`;
      state.files.push({ failed: true, name: file.name, error: err.message });
    }
    doneBytes += file.size;
  }
  showProgress(null);
  if (state.server && state.files.some((f) => !f.failed)) state.source = "files";
  renderFileList();
  await refresh();
  if (failed) setStatus("error", failed === 1 ? lastError : `${failed} files could not be read; last: ${lastError}`);
}

function loadedFiles() {
  return state.files.filter((f) => !f.failed);
}

function chosenIds() {
  return loadedFiles()
    .filter((f) => f.checked)
    .map((f) => f.id);
}

/// The merged total of the chosen files for the current type: the files'
/// own totals add up (merging sums samples).
function chosenTotal() {
  let sum = 0;
  for (const f of loadedFiles()) {
    if (!f.checked) continue;
    const t = f.types.find((x) => x.id === state.typeId);
    if (t) sum += t.total;
  }
  return sum;
}

function renderFileList() {
  const ul = $("file-list");
  ul.replaceChildren();
  state.files.forEach((f, index) => {
    const li = document.createElement("li");
    if (f.failed) {
      li.className = "failed";
      li.textContent = `${f.name}: ${f.error}`;
      const x = removeButton(() => {
        state.files.splice(index, 1);
        renderFileList();
      });
      li.prepend(x);
      x.style.float = "right";
      ul.append(li);
      return;
    }
    li.className = "file";
    li.dataset.id = String(f.id);
    li.dataset.format = f.format;
    const row = document.createElement("div");
    row.className = "row";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "pick";
    box.checked = f.checked;
    box.title = "Include in the merged view";
    box.addEventListener("change", () => {
      f.checked = box.checked;
      renderTypes();
      refresh();
    });
    const name = document.createElement("span");
    name.className = "fname";
    name.textContent = f.name;
    name.title = `${f.name} — ${formatBytes(f.size)}, parsed in ${Math.round(f.ms)} ms`;
    const fmt = document.createElement("span");
    fmt.className = "fmt";
    fmt.textContent = f.format;
    row.append(box, name, fmt, removeButton(() => removeFile(f)));
    const types = document.createElement("div");
    types.className = "types";
    types.textContent = f.types.map((t) => `${t.sampleType || t.name}: ${formatValue(t.total, t.sampleUnit)}`).join(" · ");
    li.append(row, types);
    ul.append(li);
  });
  renderTypes();
  renderDiffSelects();
}

function removeButton(onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "remove";
  b.textContent = "×";
  b.title = "Remove";
  b.addEventListener("click", (e) => {
    e.preventDefault();
    onClick();
  });
  return b;
}

async function removeFile(f) {
  state.files = state.files.filter((x) => x !== f);
  try {
    await core.call("remove", { id: f.id });
  } catch (err) {
    setStatus("error", err.message);
  }
  renderFileList();
  refresh();
}

/// The profile types present in the chosen files (all loaded files when none
/// is chosen, so the picker is never empty while files exist).
function renderTypes() {
  const sel = $("type-select");
  const chosen = loadedFiles().filter((f) => f.checked);
  const pool = chosen.length ? chosen : loadedFiles();
  const types = new Map();
  for (const f of pool) {
    for (const t of f.types) {
      const entry = types.get(t.id) || { ...t, files: 0, total: 0 };
      entry.files++;
      entry.total += t.total;
      types.set(t.id, entry);
    }
  }
  sel.replaceChildren();
  for (const t of types.values()) {
    const o = document.createElement("option");
    o.value = t.id;
    const head = t.id.split(":")[0];
    o.textContent = `${head} · ${t.sampleType} (${t.sampleUnit})${pool.length > 1 ? ` — ${t.files} file${t.files > 1 ? "s" : ""}` : ""}`;
    o.title = t.id;
    sel.append(o);
  }
  if (!types.has(state.typeId)) {
    state.typeId = preferredType([...types.keys()]);
  }
  sel.value = state.typeId;
  sel.disabled = !types.size;
  $("download").disabled = !types.size || !chosen.length;
}

/// The type shown first: a measured quantity (cpu time, wall time) rather
/// than the sample count that profiles often carry beside it, as Pyroscope
/// shows them.
function preferredType(ids) {
  return ids.find((id) => id.split(":")[1] !== "samples") || ids[0] || "";
}

function renderDiffSelects() {
  const files = loadedFiles();
  for (const [id, fallback] of [
    ["diff-left", files.slice(0, 1)],
    ["diff-right", files.slice(1, 2)],
  ]) {
    const sel = $(id);
    const before = new Set([...sel.selectedOptions].map((o) => Number(o.value)).filter((v) => files.some((f) => f.id === v)));
    const picked = before.size ? before : new Set(fallback.map((f) => f.id));
    sel.replaceChildren();
    for (const f of files) {
      const o = document.createElement("option");
      o.value = String(f.id);
      o.textContent = f.name;
      o.selected = picked.has(f.id);
      sel.append(o);
    }
  }
}

function selectedIds(id) {
  return [...$(id).selectedOptions].map((o) => Number(o.value));
}

// ------------------------------------------------------------ view rendering

function setView(view) {
  state.view = view;
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.view === view);
  refresh();
}

function layout(hasData) {
  const v = state.view;
  const files = state.source === "files";
  $("empty").hidden = hasData;
  $("pane-flame").hidden = !hasData || !(v === "flame" || v === "diff");
  $("pane-table").hidden = !hasData || v !== "table";
  $("pane-sandwich").hidden = !hasData || v !== "sandwich";
  $("diff-controls").hidden = !(v === "diff" && files && loadedFiles().length);
  $("server-diff-note").hidden = !(v === "diff" && !files && !state.compare);
  $("download").disabled = !state.typeId || !chosenIds().length;
  $("source-bar").hidden = !state.server;
  $("source-server").classList.toggle("active", !files);
  $("source-files").classList.toggle("active", files);
  $("timeline-box").hidden = files || !state.server;
  $("search").placeholder = v === "table" ? "Filter functions…" : "Search functions…";
}

/// Recomputes the current view from the current source. Overlapping calls
/// are resolved by a generation counter: only the newest one draws.
async function refresh() {
  const gen = ++state.generation;
  const files = state.source === "files";
  const hasData = files ? chosenIds().length > 0 && !!state.typeId : !!state.serverType;
  layout(hasData);
  syncUrl();
  if (!hasData) {
    for (const g of Object.values(graphs)) g.setModel(null);
    setRootTotal(0, "");
    $("empty").textContent = files
      ? loadedFiles().length
        ? "Choose at least one file (checkbox) to see the merged flame graph."
        : state.server
          ? "No server data selected. Pick a service, or drop profile files on the page."
          : "Load one or more profile files (drop them on the page or use the picker) to see their flame graph."
      : "No profile type in this time range.";
    if ($("status").dataset.state !== "error") setStatus("idle", files ? "No files chosen" : "No data");
    return;
  }
  setStatus("loading", "Computing…");
  const t0 = performance.now();
  try {
    const work = files ? renderFiles(gen) : renderServer(gen);
    await work;
    if (gen !== state.generation) return;
    const ms = Math.round(performance.now() - t0);
    setStatus("ready", `Ready — ${describe()} (${ms} ms)`);
  } catch (err) {
    if (gen !== state.generation) return;
    setStatus("error", err.message);
  }
  applySearch();
  updateZoomButton();
}

function plural(n, what) {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

function describe() {
  if (state.source === "server") {
    if (state.view === "diff") return "comparison of two time ranges";
    return `${state.service || "all services"}, ${state.selection && !state.compare ? "selected range" : `${state.from} to ${state.until}`}`;
  }
  if (state.view === "diff") return `diff of ${plural(selectedIds("diff-left").length, "file")} vs ${plural(selectedIds("diff-right").length, "file")}`;
  return `${plural(chosenIds().length, "file")} merged`;
}

async function renderFiles(gen) {
  const ids = chosenIds();
  const typeId = state.typeId;
  const unit = typeUnit(typeId);
  switch (state.view) {
    case "flame": {
      const fg = JSON.parse(await core.call("flamegraph", { ids, typeId, maxNodes: MAX_NODES }));
      if (gen !== state.generation) return;
      showMain(decodeFlamegraph(fg, { unit }));
      break;
    }
    case "table": {
      const rows = JSON.parse(await core.call("top", { ids, typeId, limit: 0 }));
      if (gen !== state.generation) return;
      setTable(rows, chosenTotal());
      break;
    }
    case "sandwich": {
      setRootTotal(chosenTotal(), unit);
      if (!state.sandwichName) return showSandwich(null, null);
      const s = JSON.parse(await core.call("sandwich", { ids, typeId, name: state.sandwichName, maxNodes: MAX_NODES }));
      if (gen !== state.generation) return;
      const half = (fg) => decodeFlamegraph(typeof fg === "string" ? JSON.parse(fg) : fg, { unit });
      showSandwich(half(s.callers), half(s.callees));
      break;
    }
    case "diff": {
      const left = selectedIds("diff-left");
      const right = selectedIds("diff-right");
      if (!left.length || !right.length) {
        graphs.main.setModel(null);
        setRootTotal(0, unit);
        throw new Error("Choose files for both sides of the diff (left and right).");
      }
      const fg = JSON.parse(await core.call("diff", { left, right, typeId, maxNodes: MAX_NODES }));
      if (gen !== state.generation) return;
      showMain(decodeFlamegraph(fg, { diff: true, unit }));
      break;
    }
  }
}

function showMain(model) {
  graphs.main.setModel(model);
  setRootTotal(model.total, model.unit);
}

function showSandwich(callers, callees) {
  const title = $("sandwich-title");
  title.textContent = state.sandwichName
    ? `Callers (above) and callees (below) of ${state.sandwichName}`
    : "Click a function in the Top functions table to see its callers and callees.";
  graphs.callers.setModel(callers);
  graphs.callees.setModel(callees);
}

// -------------------------------------------------------------------- table

function setTable(rows, rootTotal) {
  state.tableRows = rows;
  state.tableRoot = rootTotal;
  setRootTotal(rootTotal, currentUnit());
  renderTable();
}

function renderTable() {
  const { key, dir } = state.tableSort;
  const q = $("search").value.trim().toLowerCase();
  let rows = q ? state.tableRows.filter((r) => r.name.toLowerCase().includes(q)) : state.tableRows.slice();
  const sign = dir === "asc" ? 1 : -1;
  rows.sort((a, b) => {
    const c = key === "name" ? a.name.localeCompare(b.name) : a[key] - b[key];
    return c * sign || a.name.localeCompare(b.name);
  });
  const shown = rows.slice(0, TABLE_ROWS);
  const unit = currentUnit();
  const root = state.tableRoot || 0;
  const body = document.createElement("tbody");
  for (const r of shown) {
    const tr = body.insertRow();
    tr.dataset.name = r.name;
    const name = tr.insertCell();
    name.className = "name";
    name.textContent = r.name;
    for (const k of ["self", "total"]) {
      const td = tr.insertCell();
      td.className = "num";
      td.dataset.value = String(r[k]);
      td.textContent = formatValue(r[k], unit);
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = percent(r[k], root);
      td.append(pct);
    }
  }
  $("top-table").tBodies[0].replaceWith(body);
  for (const th of document.querySelectorAll("#top-table th")) {
    if (th.dataset.key === key) th.dataset.sort = dir;
    else delete th.dataset.sort;
  }
  $("table-note").textContent =
    `${groupDigits(rows.length)} function${rows.length === 1 ? "" : "s"}` +
    (rows.length > shown.length ? `, showing the first ${groupDigits(shown.length)}` : "") +
    ". Click a row for its callers and callees.";
}

function sortBy(key) {
  const s = state.tableSort;
  if (s.key === key) s.dir = s.dir === "asc" ? "desc" : "asc";
  else {
    s.key = key;
    s.dir = key === "name" ? "asc" : "desc";
  }
  renderTable();
}

function openSandwich(name) {
  state.sandwichName = name;
  setView("sandwich");
}

// ------------------------------------------------------------- server mode

function parseTime(text, now) {
  const s = String(text).trim();
  if (s === "" || s === "now") return now;
  const rel = /^now-(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(s);
  if (rel) {
    const mult = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[rel[2]];
    return now - Number(rel[1]) * mult;
  }
  if (/^\d+$/.test(s)) return s.length <= 10 ? Number(s) * 1000 : Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`not a time: ${s} (use now-1h, now, epoch seconds or an ISO date)`);
  return t;
}

function timeRange() {
  const now = Date.now();
  const start = parseTime(state.from, now);
  const end = parseTime(state.until, now);
  if (!(end > start)) throw new Error("the time range is empty: until must be after from");
  return [Math.round(start), Math.round(end)];
}

function quote(v) {
  return `"${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function selector() {
  const parts = [];
  if (state.service) parts.push(`service_name=${quote(state.service)}`);
  for (const f of state.filters) if (f.name && f.value !== "") parts.push(`${f.name}${f.op}${quote(f.value)}`);
  return `{${parts.join(",")}}`;
}

function parseQuery(q) {
  // "<type id>{a="b",c=~"d"}" as Pyroscope's URLs carry it.
  const m = /^([^{]*)(\{.*\})?$/.exec(q || "");
  if (!m) return;
  if (m[1]) state.serverType = m[1];
  const body = (m[2] || "").slice(1, -1);
  const re = /\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
  let x;
  state.filters = [];
  while ((x = re.exec(body))) {
    const value = x[3].replace(/\\(.)/g, "$1");
    if (x[1] === "service_name" && x[2] === "=") state.service = value;
    else state.filters.push({ name: x[1], op: x[2], value });
  }
}

async function initServer() {
  state.server = true;
  state.source = "server";
  $("mode-badge").textContent = "server";
  $("mode-badge").classList.add("server");
  $("server-panel").hidden = false;
  $("range-from").value = state.from;
  $("range-until").value = state.until;
  $("range-preset").value = state.until === "now" && [...$("range-preset").options].some((o) => o.value === state.from) ? state.from : "";
  $("compare").checked = state.compare;
  parseQuery(params.get("query"));
  timeline = new Timeline($("timeline"), {
    onSelect: onTimelineSelect,
    onClear: () => {
      if (state.compare || !state.selection) return;
      state.selection = null;
      refresh();
    },
  });
  await loadServerMeta();
}

let timeline = null;

async function loadServerMeta() {
  const [start, end] = timeRange();
  const [allTypes, services] = await Promise.all([
    api.profileTypes(start, end),
    api.labelValues(start, end, "service_name", []),
  ]);
  const svcSel = $("service-select");
  svcSel.replaceChildren(new Option("(all services)", ""));
  for (const s of services) svcSel.append(new Option(s, s));
  if (state.service && !services.includes(state.service)) {
    svcSel.append(new Option(`${state.service} (no data in range)`, state.service));
  }
  if (!state.service && services.length && !params.get("query")) state.service = services[0];
  svcSel.value = state.service;

  // Only the types the chosen service has (its series carry the type id as
  // a label), as a person would otherwise pick types that show nothing.
  let types = allTypes;
  if (state.service) {
    const own = new Set(await api.labelValues(start, end, "__profile_type__", [`{service_name=${quote(state.service)}}`]));
    if (own.size) types = allTypes.filter((t) => own.has(t.id));
  }
  const typeSel = $("server-type-select");
  typeSel.replaceChildren();
  for (const t of types) {
    const o = new Option(`${t.name} · ${t.sampleType} (${t.sampleUnit})`, t.id);
    o.title = t.id;
    typeSel.append(o);
  }
  if (!types.some((t) => t.id === state.serverType)) state.serverType = preferredType(types.map((t) => t.id));
  typeSel.value = state.serverType;
  await renderFilters();
}

async function renderFilters() {
  const box = $("label-filters");
  box.replaceChildren();
  let names = [];
  try {
    const [start, end] = timeRange();
    names = (await api.labelNames(start, end, [])).filter((n) => !n.startsWith("__") && n !== "service_name");
  } catch (err) {
    setStatus("error", err.message);
  }
  state.filters.forEach((f, i) => {
    const row = document.createElement("div");
    row.className = "filter";
    const name = document.createElement("select");
    for (const n of new Set([...(f.name ? [f.name] : []), ...names])) name.append(new Option(n, n));
    if (!f.name && names.length) f.name = names[0];
    name.value = f.name;
    const op = document.createElement("select");
    op.className = "op";
    for (const o of ["=", "!=", "=~", "!~"]) op.append(new Option(o, o));
    op.value = f.op;
    const value = document.createElement("input");
    value.type = "text";
    value.value = f.value;
    value.placeholder = "value";
    const listId = `label-values-${i}`;
    const list = document.createElement("datalist");
    list.id = listId;
    value.setAttribute("list", listId);
    const fillValues = async () => {
      list.replaceChildren();
      try {
        const [start, end] = timeRange();
        for (const v of await api.labelValues(start, end, f.name, [])) list.append(new Option(v));
      } catch (err) {
        setStatus("error", err.message);
      }
    };
    name.addEventListener("change", () => {
      f.name = name.value;
      fillValues();
    });
    op.addEventListener("change", () => (f.op = op.value));
    value.addEventListener("input", () => (f.value = value.value));
    value.addEventListener("keydown", (e) => e.key === "Enter" && applyServer());
    row.append(
      name,
      op,
      value,
      list,
      removeButton(() => {
        state.filters.splice(i, 1);
        renderFilters();
      }),
    );
    box.append(row);
    fillValues();
  });
}

async function renderServer(gen) {
  const [start, end] = timeRange();
  const typeId = state.serverType;
  const sel = selector();
  const unit = typeUnit(typeId);
  const base = { typeId, selector: sel, maxNodes: MAX_NODES };
  const step = Math.max(10, (end - start) / 1000 / 240);
  const seriesWork = api.selectSeries({ typeId, selector: sel, start, end, step }).then((series) => {
    if (gen !== state.generation) return;
    const sums = new Map();
    for (const s of series) {
      for (const p of s.points || []) {
        const t = Number(p.timestamp);
        sums.set(t, (sums.get(t) || 0) + Number(p.value || 0));
      }
    }
    timeline.set([...sums.entries()].sort((a, b) => a[0] - b[0]), [start, end], step * 1000, unit);
    timeline.select("main", state.compare ? null : state.selection);
    const [l, r] = compareRanges(start, end);
    timeline.select("left", state.compare ? l : null);
    timeline.select("right", state.compare ? r : null);
    $("compare-sides").hidden = !state.compare;
    $("selection-info").textContent = selectionText();
  });
  const [s0, s1] = state.selection && !state.compare ? state.selection : [start, end];
  let work;
  if (state.view === "diff") {
    if (!state.compare) {
      graphs.main.setModel(null);
      setRootTotal(0, unit);
      work = Promise.resolve();
    } else {
      const [l, r] = compareRanges(start, end);
      work = api.diff({ ...base, start: l[0], end: l[1] }, { ...base, start: r[0], end: r[1] }).then((fg) => {
        if (gen === state.generation) showMain(decodeFlamegraph(fg, { diff: true, unit }));
      });
    }
  } else if (state.view === "flame") {
    work = api.mergeStacktraces({ ...base, start: s0, end: s1 }).then((fg) => {
      if (gen === state.generation) showMain(decodeFlamegraph(fg, { unit }));
    });
  } else {
    // The table and the sandwich need every stack, not the flame graph's
    // kept nodes: the selection's merged profile goes to the wasm core.
    work = api.mergeProfile({ ...base, start: s0, end: s1 }).then((pprof) => showServerFunctions(pprof, gen, unit));
  }
  await Promise.all([seriesWork, work]);
}

/// The top table or the sandwich of a selection's merged profile, loaded
/// into the worker in place of the previous selection's.
async function showServerFunctions(pprof, gen, unit) {
  if (gen !== state.generation) return;
  const previous = state.serverFile;
  state.serverFile = null;
  if (previous !== null) await core.call("remove", { id: previous });
  let file = null;
  if (pprof.length) {
    file = JSON.parse(await core.call("load", { file: new File([pprof], "selection.pb") }));
    // A newer selection may have started meanwhile: this one's file goes.
    if (gen !== state.generation) return core.call("remove", { id: file.id });
    state.serverFile = file.id;
  }
  if (gen !== state.generation) return;
  const type = file?.types[0];
  const ids = file ? [file.id] : [];
  const total = type ? type.total : 0;
  if (state.view === "table") {
    const rows = type ? JSON.parse(await core.call("top", { ids, typeId: type.id, limit: 0 })) : [];
    if (gen === state.generation) setTable(rows, total);
    return;
  }
  setRootTotal(total, unit);
  if (!type || !state.sandwichName) return showSandwich(null, null);
  const s = JSON.parse(await core.call("sandwich", { ids, typeId: type.id, name: state.sandwichName, maxNodes: MAX_NODES }));
  if (gen !== state.generation) return;
  showSandwich(decodeFlamegraph(s.callers, { unit }), decodeFlamegraph(s.callees, { unit }));
}

function compareRanges(start, end) {
  const mid = Math.round((start + end) / 2);
  return [state.left || [start, mid], state.right || [mid, end]];
}

function fmtTime(t) {
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, "0");
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return Math.abs(Date.now() - t) > 86400e3 ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}` : hms;
}

function selectionText() {
  if (state.compare) {
    const [start, end] = timeRange();
    const [l, r] = compareRanges(start, end);
    return `left ${fmtTime(l[0])}–${fmtTime(l[1])} · right ${fmtTime(r[0])}–${fmtTime(r[1])}`;
  }
  return state.selection
    ? `selected ${fmtTime(state.selection[0])}–${fmtTime(state.selection[1])} (click the chart to clear)`
    : "drag on the chart to narrow the flame graph";
}

function onTimelineSelect(range) {
  if (state.compare) {
    const side = document.querySelector('input[name="side"]:checked').value;
    state[side] = range;
    if (side === "left") document.querySelector('input[name="side"][value="right"]').checked = true;
    if (state.view !== "diff") return setView("diff");
  } else {
    state.selection = range;
  }
  refresh();
}

async function applyServer() {
  state.from = $("range-from").value.trim() || "now-1h";
  state.until = $("range-until").value.trim() || "now";
  state.service = $("service-select").value;
  state.serverType = $("server-type-select").value;
  state.source = "server";
  try {
    timeRange();
    await loadServerMeta();
  } catch (err) {
    setStatus("error", err.message);
    return;
  }
  refresh();
}

// ---------------------------------------------------------------------- URL

function syncUrl() {
  const p = new URLSearchParams();
  if (state.server && state.source === "server") {
    p.set("query", `${state.serverType}${selector()}`);
    p.set("from", state.from);
    p.set("until", state.until);
    if (state.compare) p.set("compare", "1");
    const put = (a, b, r) => r && (p.set(a, String(r[0])), p.set(b, String(r[1])));
    if (!state.compare) put("selFrom", "selUntil", state.selection);
    else {
      put("leftFrom", "leftUntil", state.left);
      put("rightFrom", "rightUntil", state.right);
    }
  }
  if (state.view !== "flame") p.set("view", state.view);
  if (state.view === "sandwich" && state.sandwichName) p.set("function", state.sandwichName);
  const q = $("search").value.trim();
  if (q) p.set("search", q);
  if (params.get("maxNodes")) p.set("maxNodes", params.get("maxNodes"));
  const next = `${location.pathname}${p.toString() ? `?${p}` : ""}`;
  if (next !== `${location.pathname}${location.search}`) history.replaceState(null, "", next);
}

// ------------------------------------------------------------------ events

async function download() {
  const btn = $("download");
  btn.disabled = true;
  setStatus("loading", "Preparing the merged profile…");
  try {
    const bytes = await core.call("exportPprof", { ids: chosenIds(), typeId: state.typeId });
    const url = URL.createObjectURL(new Blob([bytes], { type: "application/gzip" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "kiln-merged.pb.gz";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    setStatus("ready", `Downloaded kiln-merged.pb.gz (${formatBytes(bytes.byteLength)})`);
  } catch (err) {
    setStatus("error", err.message);
  } finally {
    btn.disabled = false;
  }
}

function wire() {
  $("file-input").addEventListener("change", (e) => {
    addFiles(e.target.files);
    e.target.value = "";
  });
  const zone = $("drop-zone");
  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
    depth++;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    zone.classList.remove("over");
    if (e.dataTransfer?.files?.length) addFiles(e.dataTransfer.files);
  });
  zone.addEventListener("dragover", () => zone.classList.add("over"));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));

  $("type-select").addEventListener("change", (e) => {
    state.typeId = e.target.value;
    refresh();
  });
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => setView(b.dataset.view));
  $("search").addEventListener("input", applySearch);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && e.target.tagName !== "INPUT") for (const g of activeGraphs()) g.reset();
  });
  $("reset-zoom").addEventListener("click", () => {
    for (const g of activeGraphs()) g.reset();
  });
  for (const th of document.querySelectorAll("#top-table th")) th.addEventListener("click", () => sortBy(th.dataset.key));
  $("top-table").addEventListener("click", (e) => {
    const tr = e.target.closest("tbody tr");
    if (tr) openSandwich(tr.dataset.name);
  });
  $("diff-left").addEventListener("change", () => refresh());
  $("diff-right").addEventListener("change", () => refresh());
  $("download").addEventListener("click", download);

  // Server mode.
  $("apply").addEventListener("click", applyServer);
  $("range-preset").addEventListener("change", (e) => {
    if (!e.target.value) return;
    $("range-from").value = e.target.value;
    $("range-until").value = "now";
    state.selection = state.left = state.right = null;
    applyServer();
  });
  for (const id of ["range-from", "range-until"]) {
    $(id).addEventListener("keydown", (e) => e.key === "Enter" && applyServer());
    $(id).addEventListener("input", () => ($("range-preset").value = ""));
  }
  $("service-select").addEventListener("change", () => {
    state.selection = null;
    applyServer();
  });
  $("server-type-select").addEventListener("change", () => {
    state.serverType = $("server-type-select").value;
    state.source = "server";
    refresh();
  });
  $("add-filter").addEventListener("click", () => {
    state.filters.push({ name: "", op: "=", value: "" });
    renderFilters();
  });
  $("compare").addEventListener("change", (e) => {
    state.compare = e.target.checked;
    if (state.compare) setView("diff");
    else refresh();
  });
  $("source-server").addEventListener("click", () => {
    state.source = "server";
    refresh();
  });
  $("source-files").addEventListener("click", () => {
    state.source = "files";
    refresh();
  });
}

// ------------------------------------------------------------------- start

window.kiln = {
  get graph() {
    return state.view === "sandwich" ? graphs.callees : graphs.main;
  },
  graphs,
  state,
  maxNodes: MAX_NODES,
};

async function start() {
  wire();
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.view === state.view);
  if (params.get("search")) $("search").value = params.get("search");
  core
    .call("version")
    .then((v) => ($("version").textContent = `kiln ${v}`))
    .catch((err) => setStatus("error", err.message));
  if (await api.detectServer()) {
    try {
      await initServer();
    } catch (err) {
      setStatus("error", err.message);
    }
  }
  await refresh();
}

start();
