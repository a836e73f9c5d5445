// Server mode: the UI as the kiln binary serves it at `/`, over profiles
// pushed through /ingest with fresh timestamps. Totals are checked against
// the server's own SelectMergeStacktraces for the same selection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser } from './lib/env.mjs';
import { ingestPprof, serverTotal, startKiln } from './lib/kiln.mjs';
import { decodeProfile, functionValues } from './lib/pprof.mjs';
import { goCpuFiles, manifestTotal, testdata } from './lib/testdata.mjs';
import {
  canvasColour,
  chooseOption,
  closeApp,
  eventually,
  frames,
  locateFrame,
  noErrors,
  openApp,
  ready,
  rootTotal,
  screenshot,
} from './lib/ui.mjs';

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const SERVICE = 'kiln-browser-a';
const OTHER = 'kiln-browser-b';
const GO = 'kiln-browser-go';
const T = { timeout: 400_000 };
const MINUTE = 60_000;

let browser;
let kiln;
let now;

before(async () => {
  kiln = await startKiln();
  browser = await launchBrowser();
  now = Date.now();
  // An older and a recent profile of one service, so a timeline selection of
  // the last minutes holds the recent one only; another service beside them.
  await ingestPprof(kiln.url, SERVICE, testdata('pprof/speedscope-repo/simple.prof'), now - 40 * MINUTE);
  await ingestPprof(kiln.url, SERVICE, testdata('pprof/parca/fib.pb.gz'), now - 5 * MINUTE);
  await ingestPprof(kiln.url, OTHER, testdata('pprof/pyroscope/cpu.pb.gz'), now - 10 * MINUTE);
  // Every symbolized Go CPU file of the test data, a minute apart.
  for (const [i, file] of goCpuWithSymbols().entries()) {
    await ingestPprof(kiln.url, GO, testdata(file), now - (30 - i) * MINUTE);
  }
}, T);

after(async () => {
  await browser?.close();
  await kiln?.stop();
});

function goCpuWithSymbols() {
  return goCpuFiles().filter((f) => decodeProfile(testdata(f)).functions.length > 0);
}

/// Opens `/` and chooses the service, the CPU type and the last hour.
async function openServerView(service = SERVICE) {
  const page = await openApp(browser, `${kiln.url}/`);
  await page.waitForFunction((s) => [...document.querySelectorAll('#service-select option')].some((o) => o.value === s), service);
  await chooseOption(page, '#service-select', service);
  await chooseOption(page, '#server-type-select', CPU);
  for (const [sel, value] of [
    ['#range-from', 'now-1h'],
    ['#range-until', 'now'],
  ]) {
    const tag = await page.$eval(sel, (e) => `${e.tagName}:${e.type ?? ''}`);
    if (tag === 'SELECT:select-one') await page.selectOption(sel, value);
    else if (tag === 'INPUT:text' || tag === 'INPUT:search') await page.fill(sel, value);
  }
  await page.click('#apply');
  await ready(page);
  return page;
}

describe('server mode', () => {
  test('the server is detected and lists its services and profile types', T, async () => {
    const page = await openApp(browser, `${kiln.url}/`);
    await page.waitForFunction(() => document.querySelectorAll('#service-select option').length > 0);
    const services = await page.$$eval('#service-select option', (os) => os.map((o) => o.value));
    assert.ok(services.includes(SERVICE) && services.includes(OTHER), `services: ${services}`);
    noErrors(page);
    await closeApp(page);
  });

  test('root total equals the server’s SelectMergeStacktraces; the URL round-trips the view', T, async () => {
    const expected = await serverTotal(kiln.url, { service: SERVICE, type: CPU, start: now - 60 * MINUTE, end: Date.now() });
    assert.equal(
      expected,
      manifestTotal('pprof/speedscope-repo/simple.prof', 'cpu', 'nanoseconds') +
        manifestTotal('pprof/parca/fib.pb.gz', 'cpu', 'nanoseconds'),
      'the server holds both pushed profiles',
    );
    const page = await openServerView();
    await eventually(() => rootTotal(page), expected, 'root total of the last hour');
    const drawn = await frames(page);
    assert.ok(drawn.some((f) => f.name === 'main.calculateFib'), 'fib’s frames are drawn');
    await screenshot(page, 'server-flamegraph');

    const shared = page.url();
    assert.match(shared, new RegExp(SERVICE), 'the URL names the service');
    const again = await openApp(browser, shared);
    await ready(again);
    await eventually(() => again.$eval('#service-select', (s) => s.value), SERVICE, 'service from the URL');
    await eventually(() => again.$eval('#server-type-select', (s) => s.value), CPU, 'type from the URL');
    await eventually(() => rootTotal(again), expected, 'root total from the URL');
    noErrors(page);
    noErrors(again);
    await closeApp(again);
    await closeApp(page);
  });

  test('all symbolized Go CPU files pushed: the UI, the server and the MANIFEST agree on the total', T, async () => {
    const files = goCpuWithSymbols();
    const expected = files.reduce((s, f) => s + manifestTotal(f, 'cpu', 'nanoseconds'), 0);
    const server = await serverTotal(kiln.url, { service: GO, type: CPU, start: now - 60 * MINUTE, end: Date.now() });
    assert.equal(server, expected, `the server's total of ${files.length} Go CPU files`);
    const page = await openServerView(GO);
    await eventually(() => rootTotal(page), expected, 'root total in the UI');
    await screenshot(page, 'server-go-cpu');
    noErrors(page);
    await closeApp(page);
  });

  test('the top table and the sandwich see every stack of the selection, not the flame graph’s kept nodes', T, async () => {
    // Every pushed Go CPU file: far more functions than a flame graph keeps.
    const profiles = goCpuWithSymbols().map((f) => decodeProfile(testdata(f)));
    const { self, total } = functionValues(profiles, 'cpu', 'nanoseconds');
    const page = await openServerView(GO);
    await page.click('#view-table');
    await ready(page);
    await page.waitForSelector('#top-table tbody tr[data-name]', { state: 'visible' });
    const cells = await page.$$eval('#top-table tbody tr[data-name]', (rs) =>
      rs.map((r) => [r.dataset.name, ...[...r.querySelectorAll('td[data-value]')].map((td) => Number(td.dataset.value))]),
    );
    const note = await page.$eval('#table-note', (e) => e.textContent);
    const listed = Number(note.match(/^[\d,]+/)[0].replaceAll(',', ''));
    assert.equal(listed, total.size, `every function of the pushed files is listed (${note})`);
    for (const [name, s, t] of cells) {
      assert.equal(s, self.get(name) ?? 0, `self of ${name}`);
      assert.equal(t, total.get(name), `total of ${name}`);
    }
    const top = cells.toSorted((a, b) => b[1] - a[1])[0];
    assert.equal(top[1], Math.max(...self.values()), 'the largest self is listed');
    await screenshot(page, 'server-table');

    await page.click(`#top-table tbody tr[data-name="${top[0]}"]`);
    await ready(page);
    await eventually(() => page.evaluate(() => window.kiln.graph.model?.total), total.get(top[0]), `callees of ${top[0]}`);
    await screenshot(page, 'server-sandwich');
    noErrors(page);
    await closeApp(page);
  });

  test('dragging on the timeline narrows the flame graph to the selection', T, async () => {
    const page = await openServerView();
    const before = await rootTotal(page);
    const urlBefore = page.url();
    const box = await page.locator('#timeline').boundingBox();
    assert.ok(box && box.width > 100, 'the timeline is drawn');
    // The last quarter of the hour holds the profile pushed 5 minutes ago only.
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width * 0.78, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.9, y, { steps: 5 });
    await page.mouse.move(box.x + box.width - 2, y, { steps: 5 });
    await page.mouse.up();
    await ready(page);
    const recent = manifestTotal('pprof/parca/fib.pb.gz', 'cpu', 'nanoseconds');
    await eventually(() => rootTotal(page), recent, `the selection holds the recent profile only (was ${before})`);
    assert.notEqual(page.url(), urlBefore, 'the URL follows the selection');
    await screenshot(page, 'server-selection');
    noErrors(page);
    await closeApp(page);
  });

  test('compare mode draws a diff of two time ranges', T, async () => {
    const page = await openServerView();
    await page.click('#compare');
    await ready(page);
    await page.click('#apply');
    await ready(page);
    const drawn = await frames(page);
    assert.ok(drawn.length > 3, `the diff draws frames (${drawn.length})`);
    // The default halves of the hour: simple.prof (40 minutes ago) on the
    // left, fib (5 minutes ago) on the right.
    for (const [name, colour] of [
      ['main.calculateFib', 'red'],
      ['main.gamma', 'green'],
    ]) {
      const spot = await locateFrame(page, name);
      assert.ok(spot, `${name} is found on the diff canvas`);
      const [r, g] = await canvasColour(page, spot.x - spot.frame.width / 2 + 1, spot.x + spot.frame.width / 2 - 1, spot.y);
      if (colour === 'red') assert.ok(r > g + 40, `${name} is new on the right: red-ish, got rgb ${r},${g}`);
      else assert.ok(g > r + 40, `${name} is gone on the right: green-ish, got rgb ${r},${g}`);
    }
    await screenshot(page, 'server-compare');
    noErrors(page);
    await closeApp(page);
  });
});
