// The shared test data (../shared beside the repository, or KILN_SHARED) and
// the facts its MANIFEST.md states about each file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function sharedDir() {
  const dir = process.env.KILN_SHARED ?? resolve(repoDir, '../shared');
  if (!existsSync(join(dir, 'testdata/MANIFEST.md'))) {
    throw new Error(`SHARED TEST DATA MISSING: expected ${dir}/testdata/MANIFEST.md (set KILN_SHARED)`);
  }
  return dir;
}

export const testdataPath = (rel) => join(sharedDir(), 'testdata', rel);
export const testdata = (rel) => readFileSync(testdataPath(rel));

let cached;

/// path → {path, producer, types: [{type, unit, sum}]} for every MANIFEST row
/// that states sample types and their value sums.
export function manifest() {
  if (cached) return cached;
  cached = new Map();
  for (const line of readFileSync(testdataPath('MANIFEST.md'), 'utf8').split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(' | ').map((c) => c.trim());
    const path = cells[0].replace(/^\| `|`$/g, '');
    const facts = cells[4] ?? '';
    const types = /sample types ((?:\[\d+\] [^,;]*\/[^,;]*(?:, )?)+);/.exec(facts);
    const sums = /value sums ([-\d / ]+);/.exec(facts);
    if (!types || !sums) continue;
    const values = sums[1].split(' / ').map(Number);
    const parsed = [...types[1].matchAll(/\[(\d+)\] ([^,;]*)\/([^,;]*)/g)].map((m) => ({
      type: m[2].replace(/^"|"$/g, ''),
      unit: m[3].replace(/^"|"$/g, ''),
      sum: values[Number(m[1])],
    }));
    cached.set(path, { path, producer: cells[3], types: parsed });
  }
  return cached;
}

/// The MANIFEST's value sum of `path` for sample type `type`/`unit`.
export function manifestTotal(path, type, unit) {
  const row = manifest().get(path);
  const t = row?.types.find((x) => x.type === type && x.unit === unit);
  if (!t) throw new Error(`MANIFEST.md states no ${type}/${unit} sum for ${path}`);
  return t.sum;
}

/// Every Go CPU pprof of the test data: rows under pprof/ whose producer is a
/// Go program and that carry a cpu/nanoseconds sample type.
export function goCpuFiles() {
  return [...manifest().values()]
    .filter((r) => r.path.startsWith('pprof/') && /\bGo\b/.test(r.producer))
    .filter((r) => r.types.some((t) => t.type === 'cpu' && t.unit === 'nanoseconds'))
    .map((r) => r.path);
}
