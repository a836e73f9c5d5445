// Large, valid pprof inputs for the browser benchmark, made from the real
// Go CPU profiles of the test data: their tables are merged into one (ids
// and strings remapped), then the merged samples are repeated under one
// extra root frame per copy ("bench.copy_K"), so every copy's stacks are
// distinct, until the uncompressed file reaches the wanted size.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { decodeProfile, encodeProfile, nameTree, sampleTypeIndex, walk } from '../../tests/browser/lib/pprof.mjs';
import { goCpuFiles, manifest, testdata } from '../../tests/browser/lib/testdata.mjs';

/// The symbolized Go CPU files, each once (byte-identical copies and the
/// reference outputs of a repair skipped).
export function sourceFiles({ withLarge = true } = {}) {
  return goCpuFiles()
    .filter((f) => !/stripped|_uncompressed$|\.fixed$/.test(f))
    .filter((f) => withLarge || !f.endsWith('large.cpu'))
    .filter((f) => manifest().has(f));
}

/// One profile with the samples of all `files` (samples/count and
/// cpu/nanoseconds), symbols merged; sample labels dropped.
export function mergeSources(files) {
  const strings = [''];
  const index = new Map([['', 0]]);
  const intern = (s) => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  const out = {
    sampleType: [
      { type: intern('samples'), unit: intern('count') },
      { type: intern('cpu'), unit: intern('nanoseconds') },
    ],
    samples: [],
    mappings: [{ id: 1, memoryStart: 0, memoryLimit: 0, filename: intern('bench'), buildId: 0 }],
    locations: [],
    functions: [],
    strings,
    timeNanos: Date.now() * 1e6,
    durationNanos: 10e9,
    periodType: { type: intern('cpu'), unit: intern('nanoseconds') },
    period: 10_000_000,
  };
  for (const file of files) {
    const p = decodeProfile(testdata(file));
    const si = sampleTypeIndex(p, 'samples', 'count');
    const ci = sampleTypeIndex(p, 'cpu', 'nanoseconds');
    const fnIds = new Map();
    for (const f of p.functions) {
      const id = out.functions.length + 1;
      fnIds.set(f.id, id);
      out.functions.push({
        id,
        name: intern(p.strings[f.name]),
        systemName: intern(p.strings[f.systemName]),
        filename: intern(p.strings[f.filename]),
        startLine: f.startLine,
      });
    }
    const locIds = new Map();
    for (const l of p.locations) {
      const id = out.locations.length + 1;
      locIds.set(l.id, id);
      out.locations.push({
        id,
        mappingId: 1,
        address: l.address,
        lines: l.lines.filter((x) => fnIds.has(x.functionId)).map((x) => ({ functionId: fnIds.get(x.functionId), line: x.line })),
        isFolded: l.isFolded,
      });
    }
    for (const s of p.samples) {
      const values = [si >= 0 ? s.values[si] : 0, s.values[ci]];
      if (!values[1]) continue;
      out.samples.push({ locationIds: s.locationIds.map((id) => locIds.get(id)), values, labels: [] });
    }
  }
  return out;
}

/// `base` repeated under a per-copy root frame: `copies` whole copies, or as
/// many as make the encoded profile about `bytes` long.
export function replicate(base, { bytes, copies }) {
  const out = { ...base, functions: [...base.functions], locations: [...base.locations], strings: [...base.strings] };
  const baseSamples = base.samples;
  const none = { sampleType: [], mappings: [], locations: [], functions: [], strings: [] };
  // A copy adds its samples plus one location id (and one function, location, string) each.
  const perCopy = encodeProfile({ ...none, samples: baseSamples }).length + 2 * baseSamples.length;
  const tables = encodeProfile({ ...base, samples: [] }).length;
  const n = copies ?? Math.max(1, Math.round((bytes - tables) / perCopy));
  out.samples = [];
  for (let k = 0; k < n; k++) {
    const name = out.strings.length;
    out.strings.push(`bench.copy_${k}`);
    const fn = out.functions.length + 1;
    out.functions.push({ id: fn, name, systemName: name, filename: 0, startLine: 0 });
    const loc = out.locations.length + 1;
    out.locations.push({ id: loc, mappingId: 1, address: 0, lines: [{ functionId: fn, line: 0 }], isFolded: false });
    for (const s of baseSamples) out.samples.push({ locationIds: [...s.locationIds, loc], values: s.values, labels: [] });
  }
  return out;
}

const MB = 1e6;

/// Writes the benchmark inputs to `dir`; returns [{name, path, bytes, totals, nodes?}]
/// (totals by sample type: samples, cpu).
export function generate(dir, sizesMb) {
  mkdirSync(dir, { recursive: true });
  const files = [];
  const base = mergeSources(sourceFiles());
  const totals = (p) => ({
    samples: p.samples.reduce((s, x) => s + x.values[0], 0),
    cpu: p.samples.reduce((s, x) => s + x.values[1], 0),
  });
  for (const mb of sizesMb) {
    const p = replicate(base, { bytes: mb * MB });
    const bytes = encodeProfile(p);
    const path = join(dir, `merged-${mb}mb.pb`);
    writeFileSync(path, bytes);
    files.push({ name: `${mb} MB`, path, bytes: bytes.length, totals: totals(p) });
  }
  // A flame graph of at least 50,000 nodes for the zoom and hover timings.
  const small = mergeSources(sourceFiles({ withLarge: false }));
  const nodes = [...walk(nameTree([small], 'cpu', 'nanoseconds'))].length - 1;
  const p = replicate(small, { copies: Math.ceil(50_000 / nodes) });
  const graphNodes = [...walk(nameTree([p], 'cpu', 'nanoseconds'))].length;
  const path = join(dir, 'nodes-50k.pb');
  const bytes = encodeProfile(p);
  writeFileSync(path, bytes);
  files.push({ name: 'zoom/hover', path, bytes: bytes.length, totals: totals(p), nodes: graphNodes });
  return files;
}
