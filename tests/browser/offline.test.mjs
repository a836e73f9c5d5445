// Offline mode: the built site on a plain static host, files uploaded
// through the file input, and what a person then sees. Every expected
// number is computed here from the test data (MANIFEST.md, or our own pprof
// decoder), never asked of kiln.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, serveStatic, siteDir } from './lib/env.mjs';
import {
  decodeProfile,
  encodeProfile,
  functionValues,
  nameTree,
  stackIndex,
  stackNames,
  uniqueFrames,
  valueSum,
  walk,
} from './lib/pprof.mjs';
import { goCpuFiles, manifestTotal, testdata, testdataPath } from './lib/testdata.mjs';
import {
  canvasColour,
  chooseOption,
  closeApp,
  eventually,
  fileIds,
  frameAt,
  frames,
  locateFrame,
  noErrors,
  openApp,
  pick,
  ready,
  rootFrame,
  rootTotal,
  screenshot,
  tooltip,
  upload,
} from './lib/ui.mjs';

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const SAMPLES = 'process_cpu:samples:count:cpu:nanoseconds';
const T = { timeout: 180_000 };

let browser;
let site;
let tmp;

before(async () => {
  const dir = siteDir();
  browser = await launchBrowser();
  site = await serveStatic(dir);
  tmp = mkdtempSync(join(tmpdir(), 'kiln-browser-'));
});

after(async () => {
  await browser?.close();
  await site?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/// Nodes of a name tree by "level/name" (level 1 = top-level functions).
function nodesByKey(tree) {
  const byKey = new Map();
  for (const n of walk(tree)) {
    const key = `${n.level}/${n.name}`;
    byKey.set(key, [...(byKey.get(key) ?? []), n]);
  }
  return byKey;
}

/// Sum of the totals of nodes whose name `matches`, without counting a
/// match nested inside another match twice.
function searchSum(node, matches) {
  if (node.level > 0 && matches(node.name)) return node.total;
  let sum = 0;
  for (const c of node.children.values()) sum += searchSum(c, matches);
  return sum;
}

describe('offline mode', () => {
  test('one file: listed with its format, root total, both profile types', T, async () => {
    const page = await openApp(browser, site.url);
    await upload(page, [testdataPath('pprof/pyroscope/cpu.pb.gz')]);
    const [item] = await page.$$eval('#file-list li.file', (els) =>
      els.map((e) => ({ id: e.dataset.id, format: e.dataset.format, text: e.textContent })),
    );
    assert.equal(item.format, 'pprof');
    assert.match(item.text, /cpu\.pb\.gz/);
    await chooseOption(page, '#type-select', CPU);
    await eventually(() => rootTotal(page), manifestTotal('pprof/pyroscope/cpu.pb.gz', 'cpu', 'nanoseconds'), 'cpu total');
    await chooseOption(page, '#type-select', SAMPLES);
    await eventually(() => rootTotal(page), manifestTotal('pprof/pyroscope/cpu.pb.gz', 'samples', 'count'), 'samples');
    noErrors(page);
    await closeApp(page);
  });

  test('drag and drop: a pprof and a folded file dropped together merge into one CPU total', T, async () => {
    const pprof = 'pprof/pyroscope/cpu.pb.gz';
    const folded = 'folded/alternating.txt';
    // Folded counts are samples at the default 100 Hz: 10 ms of CPU each.
    const counts = readFileSync(testdataPath(folded), 'utf8')
      .split('\n')
      .filter((l) => l.includes(' '))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const expected = manifestTotal(pprof, 'cpu', 'nanoseconds') + counts * 10_000_000;
    const page = await openApp(browser, site.url);
    const files = [pprof, folded].map((f) => ({ name: f.split('/').pop(), bytes: [...testdata(f)] }));
    const dataTransfer = await page.evaluateHandle((files) => {
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name));
      return dt;
    }, files);
    await page.dispatchEvent('#drop-zone', 'dragenter', { dataTransfer });
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    await page.waitForFunction(() => document.querySelectorAll('#file-list li.file').length === 2, null, { timeout: 60_000 });
    await ready(page);
    const formats = await page.$$eval('#file-list li.file', (els) => els.map((e) => e.dataset.format).sort());
    assert.deepEqual(formats, ['folded', 'pprof']);
    await pick(page);
    await chooseOption(page, '#type-select', CPU);
    await eventually(() => rootTotal(page), expected, 'dropped files merged');
    noErrors(page);
    await closeApp(page);
  });

  test('flame graph: every drawn frame has the value the pprof gives it, widths proportional', T, async () => {
    const file = 'pprof/parca/fib.pb.gz';
    const tree = nameTree([decodeProfile(testdata(file))], 'cpu', 'nanoseconds');
    const page = await openApp(browser, site.url);
    await upload(page, [testdataPath(file)]);
    await chooseOption(page, '#type-select', CPU);
    await eventually(() => rootTotal(page), tree.total, 'root total');

    // A function that occurs once in the tree, with a sizeable total.
    const known = uniqueFrames(tree).find((n) => n.level >= 3 && n.total < tree.total / 2);
    assert.ok(known, 'the test profile has a unique mid-tree function');
    const frame = await frameAt(page, known.name);
    assert.ok(frame, `${known.name} is drawn`);
    assert.equal(frame.total, known.total, `${known.name} total`);
    assert.equal(frame.self, known.self, `${known.name} self`);

    const root = await rootFrame(page);
    assert.equal(root.total, tree.total);
    const byKey = nodesByKey(tree);
    const drawn = await frames(page);
    assert.ok(drawn.length > 20, `many frames drawn (${drawn.length})`);
    for (const f of drawn) {
      const level = f.level - root.level;
      if (level === 0) continue;
      const candidates = byKey.get(`${level}/${f.name}`) ?? [];
      assert.ok(
        candidates.some((n) => n.total === f.total && n.self === f.self),
        `drawn frame ${f.name} (level ${level}, total ${f.total}, self ${f.self}) is in the pprof's tree`,
      );
      const width = (f.total / root.total) * root.width;
      assert.ok(Math.abs(f.width - width) <= 1.5, `${f.name} is ${f.width}px wide, expected ${width.toFixed(1)}`);
    }
    await screenshot(page, 'offline-flamegraph');
    noErrors(page);
    await closeApp(page);
  });

  test('hover shows a tooltip, click zooms a frame to full width, reset restores', T, async () => {
    const file = 'pprof/speedscope-repo/simple.prof';
    const tree = nameTree([decodeProfile(testdata(file))], 'cpu', 'nanoseconds');
    const page = await openApp(browser, site.url);
    await upload(page, [testdataPath(file)]);
    await chooseOption(page, '#type-select', CPU);
    const target = uniqueFrames(tree).find((n) => n.level >= 2 && n.total < tree.total / 2 && n.total > tree.total / 50);
    assert.ok(target, 'a unique frame between 2% and 50% of the root');
    const root = await rootFrame(page);

    const spot = await locateFrame(page, target.name);
    assert.ok(spot, `hovering finds ${target.name} on the canvas`);
    const tip = await tooltip(page);
    assert.ok(tip.text.includes(target.name), 'the tooltip names the frame');
    const pct = Number(/(\d+(?:\.\d+)?)\s*%/.exec(tip.text)?.[1]);
    const pctExpected = (100 * target.total) / tree.total;
    assert.ok(Math.abs(pct - pctExpected) < 0.1, `the tooltip gives ${pct}% of the root, expected ${pctExpected.toFixed(2)}%`);
    await screenshot(page, 'offline-tooltip', { keepPointer: true });

    await page.mouse.click(spot.x, spot.y);
    await ready(page);
    await eventually(
      async () => Math.round((await frameAt(page, target.name))?.width ?? 0),
      Math.round(root.width),
      `${target.name} spans the full width after a click`,
    );
    const zoomed = await frameAt(page, target.name);
    assert.equal(zoomed.total, target.total, 'zoom keeps the frame value');
    assert.ok(Math.abs(zoomed.x - root.x) <= 1, 'the zoomed frame starts at the left edge');
    await screenshot(page, 'offline-zoomed');

    await page.click('#reset-zoom');
    await ready(page);
    const share = (target.total / tree.total) * root.width;
    await eventually(
      async () => Math.abs((await frameAt(page, target.name)).width - share) <= 1,
      true,
      `reset restores the frame to its share of the width (${share.toFixed(1)} px)`,
    );
    noErrors(page);
    await closeApp(page);
  });

  test('search sums the totals of matching frames, nested matches once', T, async () => {
    const file = 'pprof/speedscope-repo/simple.prof';
    const tree = nameTree([decodeProfile(testdata(file))], 'cpu', 'nanoseconds');
    const page = await openApp(browser, site.url);
    await upload(page, [testdataPath(file)]);
    await chooseOption(page, '#type-select', CPU);
    // "main" matches runtime.main and, nested in it, main.main and more;
    // "alpha" matches two frames on different paths.
    // The terms mean the same as substrings, case-insensitive substrings and
    // regular expressions here, so the check holds whichever the UI offers.
    for (const term of ['main', 'alpha', 'runtime']) {
      const expected = searchSum(tree, (n) => n.includes(term));
      assert.ok(expected > 0, `${term} matches something`);
      assert.equal(searchSum(tree, (n) => n.toLowerCase().includes(term)), expected);
      assert.equal(searchSum(tree, (n) => new RegExp(term).test(n)), expected);
      await page.fill('#search', term);
      await eventually(
        () => page.$eval('#search-total', (e) => Number(e.dataset.value)),
        expected,
        `search total for "${term}"`,
      );
    }
    await screenshot(page, 'offline-search');
    await page.fill('#search', '');
    noErrors(page);
    await closeApp(page);
  });

  test('top table: rows sort by self and by total on header clicks; a row opens the sandwich', T, async () => {
    const file = 'pprof/parca/fib.pb.gz';
    const { self, total } = functionValues([decodeProfile(testdata(file))], 'cpu', 'nanoseconds');
    const page = await openApp(browser, site.url);
    await upload(page, [testdataPath(file)]);
    await chooseOption(page, '#type-select', CPU);
    await page.click('#view-table');
    await page.waitForSelector('#top-table tbody tr[data-name]', { state: 'visible' });
    const rowNames = () => page.$$eval('#top-table tbody tr[data-name]', (rs) => rs.map((r) => r.dataset.name));
    const monotone = (values) => {
      const desc = values.every((v, i) => i === 0 || values[i - 1] >= v);
      const asc = values.every((v, i) => i === 0 || values[i - 1] <= v);
      return desc ? 'desc' : asc ? 'asc' : 'unsorted';
    };
    for (const [key, of] of [
      ['total', total],
      ['self', self],
    ]) {
      const orders = [];
      for (let click = 0; click < 2; click++) {
        await page.click(`#top-table th[data-key=${key}]`);
        await ready(page);
        const names = await rowNames();
        assert.ok(names.length > 5, 'the table lists functions');
        for (const n of names) assert.ok(of.has(n) || self.has(n) || total.has(n), `${n} is a function of the file`);
        orders.push(monotone(names.map((n) => of.get(n) ?? 0)));
      }
      assert.deepEqual(orders.toSorted(), ['asc', 'desc'], `clicking ${key} twice sorts both ways`);
    }
    // Sorted by self, descending: the first row is the function with most self.
    await page.click('#top-table th[data-key=self]');
    await ready(page);
    let names = await rowNames();
    if (monotone(names.map((n) => self.get(n) ?? 0)) !== 'desc') {
      await page.click('#top-table th[data-key=self]');
      await ready(page);
      names = await rowNames();
    }
    // Each row's self and total cells carry the values the pprof gives.
    const cells = await page.$$eval('#top-table tbody tr[data-name]', (rs) =>
      rs.map((r) => [r.dataset.name, ...[...r.querySelectorAll('td[data-value]')].map((td) => Number(td.dataset.value))]),
    );
    for (const [name, s, t] of cells) {
      assert.equal(s, self.get(name) ?? 0, `self of ${name}`);
      assert.equal(t, total.get(name), `total of ${name}`);
    }
    const maxSelf = Math.max(...self.values());
    assert.equal(self.get(names[0]), maxSelf, 'the top row has the largest self');
    await screenshot(page, 'offline-table');

    await page.click(`#top-table tbody tr[data-name="${names[0]}"]`);
    await ready(page);
    await screenshot(page, 'offline-sandwich');
    noErrors(page);
    await closeApp(page);
  });

  test('diff: a function that grew is drawn red-ish, one that shrank green-ish', T, async () => {
    const file = 'pprof/speedscope-repo/simple.prof';
    const left = decodeProfile(testdata(file));
    const tree = nameTree([left], 'cpu', 'nanoseconds');
    // Two leaf-heavy functions, neither inside the other's stacks.
    const heavy = uniqueFrames(tree).filter((n) => n.self > 0.8 * n.total && n.total > tree.total / 20);
    const index = stackIndex(left);
    const stacks = left.samples.map((s) => new Set(stackNames(left, s, index)));
    let grow;
    let shrink;
    for (const a of heavy)
      for (const b of heavy)
        if (!grow && a !== b && !stacks.some((st) => st.has(a.name) && st.has(b.name))) [grow, shrink] = [a, b];
    assert.ok(grow && shrink, 'two disjoint leaf-heavy functions');
    const right = {
      ...left,
      samples: left.samples.map((s, i) => {
        const k = stacks[i].has(grow.name) ? 4 : stacks[i].has(shrink.name) ? 0.25 : 1;
        return { ...s, values: s.values.map((v) => Math.round(v * k)) };
      }),
    };
    writeFileSync(join(tmp, 'before.pb'), encodeProfile(left));
    writeFileSync(join(tmp, 'after.pb'), encodeProfile(right));

    const page = await openApp(browser, site.url);
    await upload(page, [join(tmp, 'before.pb'), join(tmp, 'after.pb')]);
    const [leftId, rightId] = await fileIds(page);
    await page.click('#view-diff');
    await page.selectOption('#diff-left', [leftId]);
    await page.selectOption('#diff-right', [rightId]);
    await ready(page);
    await chooseOption(page, '#type-select', CPU);
    for (const [fn, colour] of [
      [grow, 'red'],
      [shrink, 'green'],
    ]) {
      const spot = await locateFrame(page, fn.name);
      assert.ok(spot, `${fn.name} is found on the diff canvas`);
      const [r, g] = await canvasColour(page, spot.x - spot.frame.width / 2 + 1, spot.x + spot.frame.width / 2 - 1, spot.y);
      if (colour === 'red') assert.ok(r > g + 40, `${fn.name} grew 4x: red-ish, got rgb ${r},${g}`);
      else assert.ok(g > r + 40, `${fn.name} shrank 4x: green-ish, got rgb ${r},${g}`);
    }
    await screenshot(page, 'offline-diff');
    noErrors(page);
    await closeApp(page);
  });

  test('export: the downloaded kiln-merged.pb.gz parses and has the same total', T, async () => {
    const files = ['pprof/pyroscope/cpu.pb.gz', 'pprof/parca/fib.pb.gz'];
    const inputs = files.map((f) => decodeProfile(testdata(f)));
    const expected = nameTree(inputs, 'cpu', 'nanoseconds');
    const page = await openApp(browser, site.url);
    await upload(page, files.map(testdataPath));
    await pick(page);
    await chooseOption(page, '#type-select', CPU);
    await eventually(() => rootTotal(page), expected.total, 'merged total');
    const failed = page
      .waitForFunction(() => document.querySelector('#status').dataset.state === 'error', null, { timeout: 0 })
      .then(
        async () => {
          throw new Error(`export failed: ${await page.textContent('#status')}`);
        },
        () => new Promise(() => {}),
      );
    const [download] = await Promise.race([Promise.all([page.waitForEvent('download'), page.click('#download')]), failed]);
    assert.equal(download.suggestedFilename(), 'kiln-merged.pb.gz');
    const path = join(tmp, 'kiln-merged.pb.gz');
    await download.saveAs(path);
    const bytes = readFileSync(path);
    assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b], 'the download is gzipped');
    const out = decodeProfile(bytes);
    assert.equal(out.sampleType.length, 1, 'one sample type: the chosen one');
    assert.deepEqual([out.strings[out.sampleType[0].type], out.strings[out.sampleType[0].unit]], ['cpu', 'nanoseconds']);
    assert.equal(valueSum(out, 0), expected.total, 'exported total');
    const tree = nameTree([out], 'cpu', 'nanoseconds');
    const byKey = nodesByKey(expected);
    for (const n of walk(tree)) {
      if (n.level === 0) continue;
      assert.ok(
        (byKey.get(`${n.level}/${n.name}`) ?? []).some((m) => m.total === n.total),
        `exported stack node ${n.name} (level ${n.level}) keeps its total ${n.total}`,
      );
    }
    noErrors(page);
    await closeApp(page);
  });

  // The acceptance check: every Go CPU pprof of the test data, the
  // four unsymbolized ones included (their frames are addresses).
  test('acceptance: all Go CPU pprof files merged show the sum of their MANIFEST totals', T, async () => {
    const files = goCpuFiles();
    assert.ok(files.length >= 10, `the MANIFEST lists the Go CPU files (${files.length})`);
    const expected = files.reduce((s, f) => s + manifestTotal(f, 'cpu', 'nanoseconds'), 0);
    const page = await openApp(browser, site.url);
    await upload(page, files.map(testdataPath));
    await pick(page);
    await chooseOption(page, '#type-select', CPU);
    await eventually(() => rootTotal(page), expected, `${files.length} Go CPU files merged`);
    await screenshot(page, 'offline-all-go-cpu');
    noErrors(page);
    await closeApp(page);
  });
});
