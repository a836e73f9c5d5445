// A small, independent pprof reader and writer (profile.proto), so the
// browser tests compute their expectations from the files themselves and
// never from kiln. Numbers are JS numbers: every value in the test data is
// below 2^53.
import { gunzipSync, gzipSync } from 'node:zlib';

const isGzip = (b) => b.length > 1 && b[0] === 0x1f && b[1] === 0x8b;

export function gunzipIfNeeded(bytes) {
  return isGzip(bytes) ? gunzipSync(bytes) : bytes;
}

class Reader {
  constructor(buf, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }
  done() {
    return this.pos >= this.end;
  }
  varint() {
    let lo = 0;
    let mul = 1;
    let big = null;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      if (i < 7) {
        lo += (b & 0x7f) * mul;
        mul *= 128;
      } else {
        // Past 49 bits only negative int64s (10-byte varints) occur: finish in BigInt.
        big ??= BigInt(lo);
        big |= BigInt(b & 0x7f) << BigInt(7 * i);
      }
      if (!(b & 0x80)) break;
    }
    if (big === null) return lo;
    return Number(BigInt.asIntN(64, big));
  }
  // [field, wireType, payload]: payload is a number (varint/fixed) or [start, end) for bytes.
  field() {
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (wire) {
      case 0:
        return [field, wire, this.varint()];
      case 1:
        this.pos += 8;
        return [field, wire, null];
      case 2: {
        const len = this.varint();
        const start = this.pos;
        this.pos += len;
        if (this.pos > this.end) throw new Error('truncated bytes field');
        return [field, wire, [start, this.pos]];
      }
      case 5:
        this.pos += 4;
        return [field, wire, null];
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

function fields(buf, [start, end], visit) {
  const r = new Reader(buf, start, end);
  while (!r.done()) visit(...r.field());
}

// Repeated integer fields come packed (wire 2) or one by one (wire 0).
function pushInts(buf, wire, payload, out) {
  if (wire === 0) {
    out.push(payload);
    return;
  }
  const r = new Reader(buf, payload[0], payload[1]);
  while (!r.done()) out.push(r.varint());
}

const text = new TextDecoder();

export function decodeProfile(bytes) {
  const buf = gunzipIfNeeded(bytes);
  const p = {
    sampleType: [],
    samples: [],
    mappings: [],
    locations: [],
    functions: [],
    strings: [],
    timeNanos: 0,
    durationNanos: 0,
    periodType: null,
    period: 0,
  };
  const valueType = (range) => {
    const vt = { type: 0, unit: 0 };
    fields(buf, range, (f, w, v) => {
      if (f === 1) vt.type = v;
      else if (f === 2) vt.unit = v;
    });
    return vt;
  };
  fields(buf, [0, buf.length], (f, w, v) => {
    switch (f) {
      case 1:
        p.sampleType.push(valueType(v));
        break;
      case 2: {
        const s = { locationIds: [], values: [], labels: [] };
        fields(buf, v, (sf, sw, sv) => {
          if (sf === 1) pushInts(buf, sw, sv, s.locationIds);
          else if (sf === 2) pushInts(buf, sw, sv, s.values);
          else if (sf === 3) {
            const l = { key: 0, str: 0, num: 0, numUnit: 0 };
            fields(buf, sv, (lf, lw, lv) => {
              if (lf === 1) l.key = lv;
              else if (lf === 2) l.str = lv;
              else if (lf === 3) l.num = lv;
              else if (lf === 4) l.numUnit = lv;
            });
            s.labels.push(l);
          }
        });
        p.samples.push(s);
        break;
      }
      case 3: {
        const m = { raw: buf.subarray(v[0], v[1]), id: 0 };
        fields(buf, v, (mf, mw, mv) => {
          if (mf === 1) m.id = mv;
        });
        p.mappings.push(m);
        break;
      }
      case 4: {
        const loc = { id: 0, mappingId: 0, address: 0, lines: [], isFolded: false };
        fields(buf, v, (lf, lw, lv) => {
          if (lf === 1) loc.id = lv;
          else if (lf === 2) loc.mappingId = lv;
          else if (lf === 3) loc.address = lv;
          else if (lf === 4) {
            const line = { functionId: 0, line: 0 };
            fields(buf, lv, (nf, nw, nv) => {
              if (nf === 1) line.functionId = nv;
              else if (nf === 2) line.line = nv;
            });
            loc.lines.push(line);
          } else if (lf === 5) loc.isFolded = lv !== 0;
        });
        p.locations.push(loc);
        break;
      }
      case 5: {
        const fn = { id: 0, name: 0, systemName: 0, filename: 0, startLine: 0 };
        fields(buf, v, (ff, fw, fv) => {
          if (ff === 1) fn.id = fv;
          else if (ff === 2) fn.name = fv;
          else if (ff === 3) fn.systemName = fv;
          else if (ff === 4) fn.filename = fv;
          else if (ff === 5) fn.startLine = fv;
        });
        p.functions.push(fn);
        break;
      }
      case 6:
        p.strings.push(text.decode(buf.subarray(v[0], v[1])));
        break;
      case 9:
        p.timeNanos = v;
        break;
      case 10:
        p.durationNanos = v;
        break;
      case 11:
        p.periodType = valueType(v);
        break;
      case 12:
        p.period = v;
        break;
      default:
        break;
    }
  });
  return p;
}

/// Index of the sample type `type`/`unit` (e.g. "cpu", "nanoseconds"), or -1.
export function sampleTypeIndex(p, type, unit) {
  return p.sampleType.findIndex((st) => p.strings[st.type] === type && p.strings[st.unit] === unit);
}

/// Sum of the values of sample type `index` (as the MANIFEST measures it).
export function valueSum(p, index) {
  let sum = 0;
  for (const s of p.samples) sum += s.values[index] ?? 0;
  return sum;
}

/// Root-first function names of a sample's stack: each location expanded to
/// its inlined lines (line[0] is the innermost call), unsymbolized ones
/// (no lines) contributing nothing.
export function stackNames(p, sample, index = stackIndex(p)) {
  const names = [];
  for (let i = sample.locationIds.length - 1; i >= 0; i--) {
    const loc = index.locations.get(sample.locationIds[i]);
    if (!loc) continue;
    for (let j = loc.lines.length - 1; j >= 0; j--) {
      const fn = index.functions.get(loc.lines[j].functionId);
      if (fn) names.push(p.strings[fn.name] ?? '');
    }
  }
  return names;
}

export function stackIndex(p) {
  return {
    locations: new Map(p.locations.map((l) => [l.id, l])),
    functions: new Map(p.functions.map((f) => [f.id, f])),
  };
}

/// The flame graph tree (function-name nodes, as Pyroscope's) of one or
/// more profiles at the sample type `type`/`unit`. Node: {name, total, self,
/// level, children: Map}. Stacks with no symbolized frame have no node.
export function nameTree(profiles, type, unit) {
  const root = { name: 'total', total: 0, self: 0, level: 0, children: new Map() };
  for (const p of profiles) {
    const vi = sampleTypeIndex(p, type, unit);
    if (vi < 0) continue;
    const index = stackIndex(p);
    for (const s of p.samples) {
      const v = s.values[vi];
      if (!v) continue;
      const names = stackNames(p, s, index);
      if (names.length === 0) continue;
      let node = root;
      root.total += v;
      for (const name of names) {
        let child = node.children.get(name);
        if (!child) {
          child = { name, total: 0, self: 0, level: node.level + 1, children: new Map() };
          node.children.set(name, child);
        }
        child.total += v;
        node = child;
      }
      node.self += v;
    }
  }
  return root;
}

/// Self and total per function name over `profiles` at `type`/`unit`, as a
/// top-functions table counts them: self at a stack's leaf, total once per
/// stack however often the function recurs in it.
export function functionValues(profiles, type, unit) {
  const self = new Map();
  const total = new Map();
  for (const p of profiles) {
    const vi = sampleTypeIndex(p, type, unit);
    const index = stackIndex(p);
    for (const s of p.samples) {
      const names = stackNames(p, s, index);
      if (!names.length || !s.values[vi]) continue;
      const leaf = names[names.length - 1];
      self.set(leaf, (self.get(leaf) ?? 0) + s.values[vi]);
      for (const n of new Set(names)) total.set(n, (total.get(n) ?? 0) + s.values[vi]);
    }
  }
  return { self, total };
}

export function* walk(node) {
  yield node;
  for (const c of node.children.values()) yield* walk(c);
}

/// Nodes of `tree` whose name occurs exactly once in the whole tree (so a
/// "find the frame called X" check is unambiguous), largest total first.
export function uniqueFrames(tree) {
  const count = new Map();
  for (const n of walk(tree)) count.set(n.name, (count.get(n.name) ?? 0) + 1);
  return [...walk(tree)].filter((n) => n.level > 0 && count.get(n.name) === 1).sort((a, b) => b.total - a.total);
}

// ---- writing ----

class Writer {
  constructor(initial = 1 << 16) {
    this.chunks = [];
    this.buf = Buffer.allocUnsafe(initial);
    this.pos = 0;
    this.size = 0;
  }
  ensure(n) {
    if (this.pos + n > this.buf.length) {
      this.chunks.push(this.buf.subarray(0, this.pos));
      this.buf = Buffer.allocUnsafe(Math.max(1 << 16, n));
      this.pos = 0;
    }
  }
  byte(b) {
    this.ensure(1);
    this.buf[this.pos++] = b;
    this.size++;
  }
  varint(v) {
    if (v < 0) {
      let b = BigInt.asUintN(64, BigInt(v));
      for (let i = 0; i < 10; i++) {
        const low = Number(b & 0x7fn);
        b >>= 7n;
        this.byte(b ? low | 0x80 : low);
        if (!b) break;
      }
      return;
    }
    while (v >= 128) {
      this.byte((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }
  bytes(b) {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.size += b.length;
  }
  tag(field, wire) {
    this.varint(field * 8 + wire);
  }
  uint(field, v) {
    if (v) {
      this.tag(field, 0);
      this.varint(v);
    }
  }
  message(field, build) {
    const inner = new Writer(256);
    build(inner);
    this.tag(field, 2);
    this.varint(inner.size);
    for (const c of inner.finish()) this.bytes(c);
  }
  packed(field, values) {
    if (!values.length) return;
    const inner = new Writer(256);
    for (const v of values) inner.varint(v);
    this.tag(field, 2);
    this.varint(inner.size);
    for (const c of inner.finish()) this.bytes(c);
  }
  finish() {
    return [...this.chunks, this.buf.subarray(0, this.pos)];
  }
}

const utf8 = new TextEncoder();

/// Encodes a profile in decodeProfile's shape (uncompressed protobuf).
export function encodeProfile(p) {
  const w = new Writer();
  const vt = (o) => (x) => {
    x.uint(1, o.type);
    x.uint(2, o.unit);
  };
  for (const st of p.sampleType) w.message(1, vt(st));
  for (const s of p.samples)
    w.message(2, (x) => {
      x.packed(1, s.locationIds);
      x.packed(2, s.values);
      for (const l of s.labels)
        x.message(3, (y) => {
          y.uint(1, l.key);
          y.uint(2, l.str);
          y.uint(3, l.num);
          y.uint(4, l.numUnit);
        });
    });
  for (const m of p.mappings) {
    if (m.raw) {
      w.tag(3, 2);
      w.varint(m.raw.length);
      w.bytes(m.raw);
    } else {
      w.message(3, (x) => {
        x.uint(1, m.id);
        x.uint(2, m.memoryStart);
        x.uint(3, m.memoryLimit);
        x.uint(5, m.filename);
        x.uint(6, m.buildId);
      });
    }
  }
  for (const loc of p.locations)
    w.message(4, (x) => {
      x.uint(1, loc.id);
      x.uint(2, loc.mappingId);
      x.uint(3, loc.address);
      for (const line of loc.lines)
        x.message(4, (y) => {
          y.uint(1, line.functionId);
          y.uint(2, line.line);
        });
      if (loc.isFolded) x.uint(5, 1);
    });
  for (const fn of p.functions)
    w.message(5, (x) => {
      x.uint(1, fn.id);
      x.uint(2, fn.name);
      x.uint(3, fn.systemName);
      x.uint(4, fn.filename);
      x.uint(5, fn.startLine);
    });
  for (const s of p.strings) {
    const b = utf8.encode(s);
    w.tag(6, 2);
    w.varint(b.length);
    w.bytes(b);
  }
  w.uint(9, p.timeNanos);
  w.uint(10, p.durationNanos);
  if (p.periodType) w.message(11, vt(p.periodType));
  w.uint(12, p.period);
  return Buffer.concat(w.finish());
}

/// The same pprof (gzipped or not, and kept so) moved to `timeNanos`:
/// protobuf keeps the last value of a scalar field, so appending field 9 is
/// enough and leaves every other byte alone.
export function withTime(bytes, timeNanos) {
  const raw = gunzipIfNeeded(bytes);
  const w = new Writer();
  w.tag(9, 0);
  w.varint(timeNanos);
  const out = Buffer.concat([raw, ...w.finish()]);
  return isGzip(bytes) ? gzipSync(out) : out;
}
