// Driving the UI through its stable DOM hooks (docs: /work/briefs/ui.md,
// "Stable DOM hooks"), the way a person would: file input, pickers, clicks,
// hovering, and reading what is on screen.
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { artifactsDir } from './env.mjs';

const TIMEOUT = Number(process.env.KILN_UI_TIMEOUT ?? 60_000);

/// A new page at `url` that records page errors and console errors, so a
/// test can assert the app threw nothing.
export async function openApp(browser, url, { viewport = { width: 1400, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Offline, the app probes for a server's query API first; a static
    // host's 404 to that probe is expected.
    const probe = m.text().startsWith('Failed to load resource') && /\/querier\.v1\./.test(m.location()?.url ?? '');
    if (m.type() === 'error' && !probe) page.errors.push(`console: ${m.text()} (${m.location()?.url ?? ''})`);
  });
  await page.goto(url);
  await page.waitForSelector('#file-input', { state: 'attached', timeout: TIMEOUT });
  return page;
}

export async function closeApp(page) {
  await page.context().close();
}

export function noErrors(page) {
  assert.deepEqual(page.errors, [], 'the page reported errors');
}

/// Waits until #status says ready (and not loading), failing with the
/// status text if it says error.
export async function ready(page, timeout = TIMEOUT) {
  // Let event handlers that start work run and flip the state first.
  await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
  const handle = await page.waitForFunction(
    () => {
      const s = document.querySelector('#status');
      return s && (s.dataset.state === 'ready' || s.dataset.state === 'error') && s.dataset.state;
    },
    null,
    { timeout },
  );
  const state = await handle.jsonValue();
  if (state === 'error') {
    throw new Error(`UI error: ${await page.textContent('#status')}`);
  }
}

/// Polls `read` until it returns `expected` (or the timeout passes), then
/// asserts equality, so a check does not race the UI's asynchronous redraw.
export async function eventually(read, expected, message, timeout = 15_000) {
  const end = Date.now() + timeout;
  let actual;
  for (;;) {
    actual = await read();
    if (actual === expected || Date.now() > end) break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.equal(actual, expected, message);
}

/// Uploads files through #file-input and waits until all are listed and
/// parsed; a file the app could not read fails the test with its message.
export async function upload(page, files) {
  const before = await page.locator('#file-list li').count();
  await page.setInputFiles('#file-input', files);
  await page.waitForFunction((n) => document.querySelectorAll('#file-list li').length >= n, before + files.length, {
    timeout: TIMEOUT,
  });
  const failed = await page.$$eval('#file-list li:not(.file)', (els) => els.map((e) => e.textContent.trim()));
  assert.deepEqual(failed, [], 'every file loads');
  await ready(page);
}

/// Ticks the `input.pick` box of exactly the listed files (by data-id), or
/// of every file when `ids` is omitted.
export async function pick(page, ids) {
  const items = page.locator('#file-list li.file');
  const n = await items.count();
  for (let i = 0; i < n; i++) {
    const item = items.nth(i);
    const id = await item.getAttribute('data-id');
    await item.locator('input.pick').setChecked(!ids || ids.includes(id));
  }
  await ready(page);
}

export async function fileIds(page) {
  return page.$$eval('#file-list li.file', (els) => els.map((e) => e.dataset.id));
}

/// Selects the option of `select` whose value (or text) is the profile type id.
export async function chooseOption(page, select, value) {
  const values = await page.$$eval(`${select} option`, (os) => os.map((o) => [o.value, o.textContent]));
  const match = values.find(([v]) => v === value) ?? values.find(([, t]) => t.includes(value));
  assert.ok(match, `${select} offers ${value}; it has ${JSON.stringify(values)}`);
  if ((await page.$eval(select, (s) => s.value)) !== match[0]) {
    await page.selectOption(select, match[0]);
  }
  await ready(page);
}

export async function rootTotal(page) {
  const [text, value] = await page.$eval('#root-total', (e) => [e.textContent.trim(), e.dataset.value]);
  assert.equal(text, value, '#root-total shows the same integer as its data-value');
  assert.match(value ?? '', /^\d+$/, '#root-total is a plain integer');
  return Number(value);
}

export const frames = (page) => page.evaluate(() => window.kiln.graph.frames());
export const frameAt = (page, name) => page.evaluate((n) => window.kiln.graph.frameAt(n), name);

/// The frame drawn for the root ("total"): the one with the lowest level.
export async function rootFrame(page) {
  const all = await frames(page);
  assert.ok(all.length > 0, 'the flame graph draws frames');
  return all.reduce((a, b) => (b.level < a.level ? b : a));
}

/// Finds where on #flamegraph the frame called `name` is drawn, the way a
/// person would: move the mouse down the frame's horizontal middle until
/// the tooltip names it. Returns page coordinates {x, y} or null.
export async function locateFrame(page, name, canvas = '#flamegraph') {
  const frame = await frameAt(page, name);
  assert.ok(frame, `a frame called ${name} is drawn`);
  const box = await page.locator(canvas).boundingBox();
  const x = box.x + frame.x + frame.width / 2;
  for (let y = box.y + 2; y < box.y + box.height; y += 4) {
    await page.mouse.move(x, y);
    const tip = await tooltip(page);
    if (tip.visible && firstLine(tip.text) === name) return { x, y, frame };
  }
  for (let y = box.y + 2; y < box.y + box.height; y += 4) {
    await page.mouse.move(x, y);
    const tip = await tooltip(page);
    if (tip.visible && tip.text.includes(name)) return { x, y, frame };
  }
  return null;
}

const firstLine = (t) => t.trim().split('\n')[0].trim();

export function tooltip(page) {
  return page.$eval('#tooltip', (e) => {
    const style = getComputedStyle(e);
    return {
      visible: !e.hidden && style.display !== 'none' && style.visibility !== 'hidden',
      text: e.innerText ?? e.textContent,
    };
  });
}

/// The most frequent colour of the canvas pixels on the horizontal strip
/// from page x0 to x1 at page y (read back from the canvas itself, in device
/// pixels): a frame's fill wins over the glyphs of its label.
export function canvasColour(page, x0, x1, y, canvas = '#flamegraph') {
  return page.$eval(
    canvas,
    (c, [a, b, py]) => {
      const r = c.getBoundingClientRect();
      const sx = c.width / r.width;
      const sy = c.height / r.height;
      const left = Math.round((a - r.left) * sx);
      const width = Math.max(1, Math.round((b - a) * sx));
      const d = c.getContext('2d').getImageData(left, Math.round((py - r.top) * sy), width, 1).data;
      const counts = new Map();
      for (let i = 0; i < d.length; i += 4) {
        const key = `${d[i]},${d[i + 1]},${d[i + 2]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const [best] = [...counts].reduce((m, e) => (e[1] > m[1] ? e : m));
      return best.split(',').map(Number);
    },
    [x0, x1, y],
  );
}

/// Saves target/browser-artifacts/<name>.png; the pointer is moved away
/// first unless the shot is of what hovering shows.
export async function screenshot(page, name, { keepPointer = false } = {}) {
  if (!keepPointer) await page.mouse.move(0, 0);
  await page.screenshot({ path: join(artifactsDir(), `${name}.png`), fullPage: true });
}
