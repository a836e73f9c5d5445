import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { serveStatic, chromiumPath } from '/work/main/tests/browser/lib/env.mjs'; import { chromium } from 'playwright-core'; const launchBrowser = () => chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--disable-dev-shm-usage', ...(process.env.FLAGS ? [process.env.FLAGS] : [])] });
function renderers() {
  const out = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer')) continue;
      const st = readFileSync(`/proc/${pid}/status`, 'utf8');
      out.push({ pid, rss: +/VmRSS:\s+(\d+)/.exec(st)[1] / 1024, hwm: +/VmHWM:\s+(\d+)/.exec(st)[1] / 1024 });
    } catch {}
  }
  return out;
}
const site = await serveStatic('/work/main/target/site');
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } }); const seen = new Set(); page.on('console', (m) => { if (!seen.has(m.text())) { seen.add(m.text()); console.log(m.text(), JSON.stringify(renderers().map(r=>r.rss))); } });
await page.goto(site.url);
await page.waitForSelector('#file-input', { state: 'attached' });
await new Promise((ok) => setTimeout(ok, 500));
console.log('after load', JSON.stringify(renderers()));
for (const r of renderers()) { try { writeFileSync(`/proc/${r.pid}/clear_refs`, '5'); } catch (e) { console.log('clear', e.message); } }
console.log('after reset', JSON.stringify(renderers()));
await page.setInputFiles('#file-input', process.argv[2]);
await page.waitForFunction(() => document.querySelector('#status')?.dataset.state === 'ready' && document.querySelector('#root-total')?.dataset.value, null, { timeout: 60000 });
await new Promise((ok) => setTimeout(ok, 300));
console.log('after file', JSON.stringify(renderers()));
await browser.close();
site.close?.();
process.exit(0);
