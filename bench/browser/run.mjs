// The browser benchmark (issue 5, "Performance"): kiln's site in offline
// mode and speedscope 1.25.0, side by side in headless Debian chromium, on
// the same large pprofs; then zoom and hover frame times on a 50,000-node
// flame graph. `npm run bench`; BENCH_APPS=kiln,speedscope,
// BENCH_SIZES=10,50,100 (MB), BENCH_TIMEOUT=180 (seconds per app and file),
// BENCH_RUNS=3 (kiln's runs per file, the median reported).
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';

import { launchBrowser, serveStatic, siteDir } from '../../tests/browser/lib/env.mjs';
import { repoDir } from '../../tests/browser/lib/testdata.mjs';
import { generate } from './gen.mjs';

const apps = (process.env.BENCH_APPS ?? 'kiln,speedscope').split(',').filter(Boolean);
const sizes = (process.env.BENCH_SIZES ?? '10,50,100').split(',').filter(Boolean).map(Number);
const timeoutMs = Number(process.env.BENCH_TIMEOUT ?? 180) * 1000;
// kiln's loads take seconds and vary run to run on a shared machine: the
// median of a few is reported (speedscope's take minutes or crash: one).
const kilnRuns = Number(process.env.BENCH_RUNS ?? 3);
const outDir = resolve(repoDir, 'target/bench-browser');
const MB = 1e6;
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/// Generated inputs are reused while the generator and the sizes are unchanged.
function inputs() {
  const meta = join(outDir, 'inputs.json');
  const genTime = statSync(new URL('./gen.mjs', import.meta.url)).mtimeMs;
  if (existsSync(meta)) {
    const old = JSON.parse(readFileSync(meta, 'utf8'));
    const fresh = old.genTime === genTime && sizes.every((s) => old.files.some((f) => f.name === `${s} MB`));
    if (fresh && old.files.every((f) => existsSync(f.path))) return old.files;
  }
  process.stderr.write(`generating inputs in ${outDir} ...\n`);
  const files = generate(outDir, sizes);
  writeFileSync(meta, JSON.stringify({ genTime, files }, null, 1));
  return files;
}

/// Resident memory (kB) of the browser's renderer processes: dedicated
/// workers and wasm memories live there too, which the page's JS heap
/// metric does not see.
function rendererMemory(browserPid) {
  const children = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(pid)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const stack = [browserPid];
  let rss = 0;
  let hwm = 0;
  while (stack.length) {
    const pid = stack.pop();
    for (const c of children.get(pid) ?? []) stack.push(c);
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer') || cmd.includes('--extension-process')) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      // the process ended meanwhile
    }
  }
  return { rss: rss * 1024, hwm: hwm * 1024 };
}

/// Samples the page's JS heap (CDP Performance.getMetrics) and the
/// renderers' RSS every 50 ms until stopped; returns the peaks.
function sampler(cdp, browserPid) {
  let heap = 0;
  let rss = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        // The renderer answers between tasks only, and never once crashed.
        const answer = await Promise.race([cdp.send('Performance.getMetrics'), sleep(1000).then(() => null)]);
        const used = answer?.metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
        heap = Math.max(heap, used);
      } catch {
        // the renderer crashed: keep what was seen
      }
      rss = Math.max(rss, rendererMemory(browserPid).rss);
      await sleep(50);
    }
  })();
  return async () => {
    running = false;
    await loop;
    return { heap, rss };
  };
}

// In-page probes, installed before the file is chosen: the time of the file
// input's change event, and of the first animation frame after the app says
// it is done (so the canvas has been painted).
const kilnProbe = () => {
  window.__bench = {};
  document.addEventListener('change', (e) => (window.__bench.start ??= performance.now()), true);
  const status = document.querySelector('#status');
  new MutationObserver(() => {
    const b = window.__bench;
    if (b.start === undefined || b.ready !== undefined || status.dataset.state !== 'ready') return;
    if (!document.querySelector('#root-total')?.dataset.value) return;
    b.ready = performance.now();
    requestAnimationFrame(() => requestAnimationFrame(() => (b.painted = performance.now())));
  }).observe(document.body, { attributes: true, subtree: true, childList: true, characterData: true });
};

const speedscopeProbe = () => {
  window.__bench = {};
  document.addEventListener('change', () => (window.__bench.start ??= performance.now()), true);
  const poll = () => {
    const b = window.__bench;
    if (b.start !== undefined && document.title.endsWith(' - speedscope') && document.querySelector('canvas')) {
      b.ready = performance.now();
      requestAnimationFrame(() => requestAnimationFrame(() => (b.painted = performance.now())));
      return;
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
};

async function measureLoad(app, file, urls) {
  const browser = await launchBrowser();
  // Playwright starts chromium as our child; one browser runs at a time.
  const pid = process.pid;
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    let crashed = false;
    page.on('crash', () => (crashed = true));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    if (app === 'kiln') {
      await page.goto(urls.kiln);
      await page.waitForSelector('#file-input', { state: 'attached' });
      await page.evaluate(kilnProbe);
    } else {
      await page.goto(urls.speedscope);
      await page.waitForSelector('input[type=file]#file', { state: 'attached' });
      await page.evaluate(speedscopeProbe);
    }
    await page.evaluate(() => new Promise((ok) => setTimeout(ok, 300)));
    const base = rendererMemory(pid);
    const stop = sampler(cdp, pid);
    if (app === 'kiln') {
      await page.setInputFiles('#file-input', file.path);
    } else {
      await page.setInputFiles('input[type=file]#file', file.path);
    }
    const deadline = Date.now() + timeoutMs;
    let result;
    while (!result) {
      if (crashed) result = { outcome: 'crashed (OOM)' };
      else if (Date.now() > deadline) result = { outcome: `timeout (${timeoutMs / 1000} s)` };
      else {
        // A crashed page never answers: bound every look at it.
        const look = (f) => Promise.race([page.evaluate(f).catch(() => null), sleep(2000).then(() => null)]);
        const b = await look(() => window.__bench);
        if (app === 'kiln') {
          const state = await look(() => [document.querySelector('#status').dataset.state, document.querySelector('#status').textContent]);
          if (state?.[0] === 'error') result = { outcome: `error: ${state[1]}` };
        }
        if (b?.painted !== undefined) result = { outcome: 'ok', ms: b.painted - b.start, readyMs: b.ready - b.start };
        else await sleep(50);
      }
    }
    const peaks = await stop();
    const end = rendererMemory(pid);
    result.heap = peaks.heap;
    result.rssDelta = Math.max(peaks.rss, end.hwm) - base.rss;
    if (app === 'kiln' && result.outcome === 'ok') {
      // The total of the type the app chose to show first.
      const [total, type] = await page.evaluate(() => [
        Number(document.querySelector('#root-total').dataset.value),
        document.querySelector('#type-select').value,
      ]);
      const expected = type.split(':')[1] === 'cpu' ? file.totals.cpu : file.totals.samples;
      if (total !== expected) result.outcome = `wrong total ${total} for ${type} (expected ${expected})`;
    }
    return result;
  } finally {
    await browser.close().catch(() => {});
  }
}

/// Zoom and hover on the 50,000-node graph: each operation's synchronous
/// work plus the animation-frame callbacks it schedules, timed in the page.
async function measureInteraction(file, urls) {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${urls.kiln}?maxNodes=${Math.max(60_000, file.nodes + 1000)}`);
    await page.waitForSelector('#file-input', { state: 'attached' });
    await page.setInputFiles('#file-input', file.path);
    await page.waitForFunction(() => document.querySelector('#status')?.dataset.state === 'ready' && window.kiln?.graph, null, {
      timeout: timeoutMs,
    });
    return await page.evaluate(async () => {
      const spent = { ms: 0 };
      const raf = window.requestAnimationFrame.bind(window);
      window.requestAnimationFrame = (cb) =>
        raf((t) => {
          const t0 = performance.now();
          try {
            cb(t);
          } finally {
            spent.ms += performance.now() - t0;
          }
        });
      const frame = () => new Promise((ok) => raf(() => raf(ok)));
      const timed = async (op) => {
        spent.ms = 0;
        const t0 = performance.now();
        op();
        const sync = performance.now() - t0;
        await frame();
        return sync + spent.ms;
      };
      const graph = window.kiln.graph;
      const canvas = document.querySelector('#flamegraph');
      const targets = graph
        .frames()
        .filter((f) => f.level >= 1 && f.width >= 2)
        .sort((a, b) => b.total - a.total)
        .slice(0, 60);
      const zoom = [];
      for (const f of targets) {
        zoom.push(await timed(() => graph.zoom(f.name)));
        zoom.push(await timed(() => graph.reset()));
      }
      const r = canvas.getBoundingClientRect();
      const hover = [];
      let seed = 1;
      const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      for (let i = 0; i < 200; i++) {
        const ev = new MouseEvent('mousemove', {
          bubbles: true,
          clientX: r.left + rand() * r.width,
          clientY: r.top + rand() * Math.min(r.height, 600),
        });
        hover.push(await timed(() => canvas.dispatchEvent(ev)));
      }
      const q = (xs, p) => xs.toSorted((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
      return {
        graphNodes: graph.model?.nodes,
        drawnFrames: graph.frames().length,
        zoom: { n: zoom.length, p50: q(zoom, 0.5), p95: q(zoom, 0.95), max: Math.max(...zoom) },
        hover: { n: hover.length, p50: q(hover, 0.5), p95: q(hover, 0.95), max: Math.max(...hover) },
      };
    });
  } finally {
    await browser.close().catch(() => {});
  }
}

const fmtMs = (r) => (r?.outcome === 'ok' ? `${(r.ms / 1000).toFixed(2)} s` : (r?.outcome ?? '-'));
/// The median run's time, with the spread of all runs when there were several.
const fmtRuns = (r) => {
  const ms = (r?.runs ?? []).filter((x) => x !== null);
  if (ms.length < 2) return fmtMs(r);
  return `${fmtMs(r)} (${(Math.min(...ms) / 1000).toFixed(2)}–${(Math.max(...ms) / 1000).toFixed(2)})`;
};
const fmtMb = (b) => (b ? `${(b / MB).toFixed(0)} MB` : '-');

async function main() {
  const files = inputs();
  const site = apps.includes('kiln') ? await serveStatic(siteDir()) : null;
  const speedscopeDir = resolve(repoDir, 'node_modules/speedscope/dist/release');
  const sscope = apps.includes('speedscope') ? await serveStatic(speedscopeDir) : null;
  const urls = { kiln: site?.url, speedscope: sscope && `${sscope.url}index.html` };
  const results = [];
  try {
    for (const file of files.filter((f) => sizes.some((s) => f.name === `${s} MB`))) {
      const row = { file: file.name, bytes: file.bytes };
      for (const app of apps) {
        // Each run in a fresh browser; the median run (by time) is reported.
        const runs = [];
        for (let i = 0; i < (app === 'kiln' ? kilnRuns : 1); i++) {
          process.stderr.write(`${app} ${file.name} ...\n`);
          const r = await measureLoad(app, file, urls);
          process.stderr.write(`  ${JSON.stringify(r)}\n`);
          runs.push(r);
          // A crashed renderer's gigabytes take a moment to be given back.
          if (r.outcome !== 'ok') await sleep(5000);
        }
        runs.sort((a, b) => (a.ms ?? Infinity) - (b.ms ?? Infinity));
        row[app] = { ...runs[Math.floor(runs.length / 2)], runs: runs.map((r) => r.ms ?? null) };
      }
      results.push(row);
    }
    let interaction = null;
    if (apps.includes('kiln')) {
      const file = files.find((f) => f.nodes);
      interaction = { file: file.path, treeNodes: file.nodes, ...(await measureInteraction(file, urls)) };
    }
    writeFileSync(join(outDir, 'results.json'), JSON.stringify({ results, interaction }, null, 1));

    const load = loadavg().map((x) => x.toFixed(1)).join(' / ');
    console.log(`\nLoad: file input -> first flame graph paint (headless Debian chromium; ${cpus().length} cores, load ${load})`);
    console.log('| input (uncompressed) | app | load -> paint (median, range) | peak JS heap (page) | peak renderer RSS - baseline |');
    console.log('| --- | --- | ---: | ---: | ---: |');
    for (const row of results)
      for (const app of apps) {
        const r = row[app];
        console.log(`| ${fmtMb(row.bytes)} | ${app} | ${fmtRuns(r)} | ${fmtMb(r.heap)} | ${fmtMb(r.rssDelta)} |`);
      }
    if (apps.includes('kiln') && apps.includes('speedscope')) {
      console.log('\n| input | speedscope time / kiln time | speedscope RSS / kiln RSS | kiln RSS / input size |');
      console.log('| --- | ---: | ---: | ---: |');
      for (const row of results) {
        const k = row.kiln;
        const s = row.speedscope;
        const both = k.outcome === 'ok' && s.outcome === 'ok';
        const t = both ? `${(s.ms / k.ms).toFixed(1)}x` : `kiln ${fmtMs(k)}, speedscope ${fmtMs(s)}`;
        const m = both ? `${(s.rssDelta / k.rssDelta).toFixed(1)}x` : '-';
        console.log(`| ${fmtMb(row.bytes)} | ${t} | ${m} | ${(k.rssDelta / row.bytes).toFixed(2)} |`);
      }
    }
    console.log(
      '\nJS heap: the page main thread only (CDP Performance.getMetrics, sampled every 50 ms); kiln parses in a\n' +
        'Web Worker into wasm memory, which it does not see. Renderer RSS: VmRSS/VmHWM of the renderer process\n' +
        '(page + its workers + wasm memories) from /proc, minus its RSS before the file was chosen.',
    );
    if (interaction) {
      const { zoom, hover } = interaction;
      console.log(
        `\nZoom and hover on a ${interaction.graphNodes}-node flame graph (${interaction.drawnFrames} frames drawn; ` +
          'per operation: its synchronous work plus the animation-frame callbacks it caused)',
      );
      console.log('| operation | n | p50 | p95 | max |');
      console.log('| --- | ---: | ---: | ---: | ---: |');
      for (const [name, x] of [
        ['zoom / reset', zoom],
        ['hover', hover],
      ])
        console.log(`| ${name} | ${x.n} | ${x.p50.toFixed(2)} ms | ${x.p95.toFixed(2)} ms | ${x.max.toFixed(2)} ms |`);
    }
  } finally {
    await site?.close();
    await sscope?.close();
  }
}

await main();
