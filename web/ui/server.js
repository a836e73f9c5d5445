// The kiln server's query API (Connect with JSON bodies, as Pyroscope's UI
// uses it; binary for the merged profile, whose answer is a pprof). Only
// used when the page is served by kiln.

const BASE = "/querier.v1.QuerierService/";

async function call(method, body) {
  const res = await fetch(BASE + method, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = null;
  }
  if (!res.ok || json === null) {
    const msg = json && json.message ? json.message : text.slice(0, 200) || res.statusText;
    throw new Error(`${method}: ${msg}`);
  }
  return json;
}

/// True when a kiln (or Pyroscope) query API answers at this origin.
export async function detectServer() {
  if (location.protocol !== "http:" && location.protocol !== "https:") return false;
  try {
    const now = Date.now();
    const res = await fetch(BASE + "ProfileTypes", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ start: now - 3600e3, end: now }),
    });
    if (!res.ok) return false;
    const type = res.headers.get("content-type") || "";
    if (!type.includes("json")) return false;
    const json = await res.json();
    return json !== null && typeof json === "object";
  } catch {
    return false;
  }
}

export async function profileTypes(start, end) {
  const r = await call("ProfileTypes", { start, end });
  return (r.profileTypes || []).map((t) => ({
    id: t.ID || t.id || [t.name, t.sampleType, t.sampleUnit, t.periodType, t.periodUnit].map((x) => x || "").join(":"),
    name: t.name,
    sampleType: t.sampleType,
    sampleUnit: t.sampleUnit,
    periodType: t.periodType,
    periodUnit: t.periodUnit,
  }));
}

export async function labelNames(start, end, matchers) {
  const r = await call("LabelNames", { start, end, matchers });
  return r.names || [];
}

export async function labelValues(start, end, name, matchers) {
  const r = await call("LabelValues", { start, end, name, matchers });
  return r.names || [];
}

export async function selectSeries({ typeId, selector, start, end, step }) {
  const r = await call("SelectSeries", { profileTypeID: typeId, labelSelector: selector, start, end, step });
  return r.series || [];
}

export async function mergeStacktraces({ typeId, selector, start, end, maxNodes }) {
  const r = await call("SelectMergeStacktraces", {
    profileTypeID: typeId,
    labelSelector: selector,
    start,
    end,
    maxNodes,
  });
  return r.flamegraph || { names: [], levels: [], total: "0", maxSelf: "0" };
}

export async function diff(left, right) {
  const side = (s) => ({
    profileTypeID: s.typeId,
    labelSelector: s.selector,
    start: s.start,
    end: s.end,
    maxNodes: s.maxNodes,
  });
  const r = await call("Diff", { left: side(left), right: side(right) });
  return r.flamegraph || { names: [], levels: [], total: "0", maxSelf: "0", leftTicks: "0", rightTicks: "0" };
}

/// The merged profile of a selection as pprof bytes (SelectMergeProfile in
/// Connect's binary encoding: the answer's body is the google.v1.Profile).
export async function mergeProfile({ typeId, selector, start, end }) {
  const body = [];
  stringField(body, 1, typeId);
  stringField(body, 2, selector);
  varintField(body, 3, start);
  varintField(body, 4, end);
  const res = await fetch(BASE + "SelectMergeProfile", {
    method: "POST",
    headers: { "content-type": "application/proto" },
    body: new Uint8Array(body),
  });
  if (!res.ok) {
    const text = await res.text();
    let msg = text.slice(0, 200) || res.statusText;
    try {
      msg = JSON.parse(text).message || msg;
    } catch {
      // not a Connect error body
    }
    throw new Error(`SelectMergeProfile: ${msg}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

function varint(out, n) {
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function varintField(out, field, n) {
  varint(out, field << 3);
  varint(out, n);
}

function stringField(out, field, s) {
  const bytes = new TextEncoder().encode(s);
  varint(out, (field << 3) | 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}
