// The ComfyUI frontend, unchanged, against wan-serve in Debian's headless Chromium: the page opens
// without console errors, the pack's nodes are in the node library with their placement combos,
// the shipped t2v workflow loads, is queued with the Queue button, reports progress and shows
// its finished preview. Bounded: the whole check must end within 60 s.
//
//   node frontend_test.js WAN_SERVE REPO_ROOT WORK_DIR [SCREENSHOT.png]
// Exit 0: passed; 1: failed (one line says why); 77: skipped (no chromium or playwright-core).
const fs = require('fs');
const path = require('path');
const { startServe } = require('./serve_process.js');

const [serveBinary, repo, work, screenshot] = process.argv.slice(2);
const kSkip = 77;
const kChromium = '/usr/bin/chromium';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function skip(why) {
  console.log('SKIPPED: ' + why);
  process.exit(kSkip);
}

let launchChromium;
try {
  ({ launchChromium } = require(path.join(repo, 'scripts/comfyui_check/open_workflow.js')));
} catch (e) {
  skip('playwright-core is not installed in scripts/comfyui_check/node_modules ' +
       '(cd scripts/comfyui_check && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install)');
}
if (!fs.existsSync(kChromium)) skip(kChromium + ' is missing (apt-get install chromium)');

// The runner tests' tiny-model settings (tests/runner/runner_test_util.h), as a user would pick
// them in the widgets.
const kSets = {
  LoadDiT: { model_name: 'dit_t2v_tiny.safetensors' },
  LoadT5: { model_name: 't5_tiny_encoder.pth', tokenizer: 'wan_tiny' },
  LoadVAE: { model_name: 'vae_tiny.pth' },
  Sample: { width: 64, height: 64, frames: 9, steps: 2 },
};

function startServer() {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  return startServe(serveBinary, [
    '--models', path.join(repo, 'tests/data/models'), '--output', path.join(work, 'output'),
    '--input', path.join(work, 'input'), '--user-directory', path.join(work, 'user'),
    '--vram', '40MiB', '--reserve', '0']);
}

async function main() {
  const server = startServer();
  const port = await server.port;
  const url = `http://127.0.0.1:${port}`;
  if ((await fetch(url + '/')).status === 404 && server.log().includes('no ComfyUI frontend found')) {
    server.child.kill('SIGTERM');
    skip('wan-serve found no frontend (pip install comfyui-frontend-package==1.27.10 into .venv)');
  }
  const problems = [];
  const context = await launchChromium(path.join(work, 'profile'));
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text() + ' at ' + (m.location() || {}).url); });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message + ' @ ' + String(e.stack).slice(0, 800)));
    // A request whose answer arrived but whose body the page never read is reported "aborted";
    // that is the page's choice, not a failure.
    const answered = new Set();
    page.on('requestfailed', (r) => {
      if (r.failure().errorText === 'net::ERR_ABORTED' && answered.has(r)) return;
      problems.push(`failed ${r.url()}: ${r.failure().errorText}`);
    });
    page.on('response', (r) => {
      answered.add(r.request());
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
    });
    await page.goto(url, { waitUntil: 'load', timeout: 30000 });
    await page.waitForFunction(() => window.app && window.app.graph && window.app.canvas &&
                                     window.LiteGraph, null, { timeout: 30000 });
    await page.keyboard.press('Escape');

    // The node library: every pack node registered, loaders with the placement combo.
    const library = await page.evaluate(() => {
      const types = window.LiteGraph.registered_node_types;
      const node = window.LiteGraph.createNode('LoadDiT');
      const placement = node && node.widgets.find((w) => w.name === 'placement');
      return {
        nodes: ['LoadDiT', 'LoadT5', 'LoadVAE', 'LoadCLIPVision', 'EncodePrompt', 'Sample', 'Decode',
                'ImageToVideo', 'VaceToVideo', 'SaveTensor'].filter((t) => !types[t]),
        placement: placement ? placement.options.values : null,
        category: types.LoadDiT && types.LoadDiT.category,
      };
    });
    if (library.nodes.length) throw new Error('not in the node library: ' + library.nodes.join(', '));
    // The widget offers exactly what the server's schema lists, the contract's three included.
    const info = await (await fetch(url + '/api/object_info/LoadDiT')).json();
    const served = info.LoadDiT.input.required.placement[0];
    if (JSON.stringify(library.placement) !== JSON.stringify(served) ||
        !['gpu', 'cpu', 'offload'].every((p) => served.includes(p)))
      throw new Error('LoadDiT placement combo: ' + JSON.stringify(library.placement) +
                      ', served ' + JSON.stringify(served));

    // The shipped workflow, loaded as a file drop would, pointed at the tiny models.
    const workflow = JSON.parse(fs.readFileSync(path.join(repo, 'workflows/t2v/baseline.json')));
    await page.evaluate(async (wf) => { await window.app.loadGraphData(wf); }, workflow);
    await page.keyboard.press('Escape');
    const missing = await page.evaluate((sets) => {
      const misses = [];
      for (const [type, values] of Object.entries(sets)) {
        const node = window.app.graph.nodes.find((n) => n.type === type);
        for (const [name, value] of Object.entries(values)) {
          const widget = node && node.widgets.find((w) => w.name === name);
          if (!widget) { misses.push(type + '.' + name); continue; }
          widget.value = value;
          if (widget.callback) widget.callback(value);
        }
      }
      window.__events = [];
      for (const type of ['execution_start', 'executing', 'progress', 'executed',
                          'execution_success', 'execution_error'])
        window.app.api.addEventListener(type, (e) => window.__events.push([type, e.detail]));
      return misses;
    }, kSets);
    if (missing.length) throw new Error('no widget for ' + missing.join(', '));

    const button = page.locator('[data-testid="queue-button"]').first();
    if (await button.count()) await button.click({ timeout: 10000 });
    else await page.evaluate(() => window.app.queuePrompt(0));
    await page.waitForFunction(() => window.__events.some((e) => e[0] === 'execution_success' ||
                                                              e[0] === 'execution_error'),
                               null, { timeout: 30000 });
    const events = await page.evaluate(() => window.__events);
    const failed = events.find((e) => e[0] === 'execution_error');
    if (failed) throw new Error('the run failed: ' + JSON.stringify(failed[1]).slice(0, 300));
    if (!events.some((e) => e[0] === 'progress')) throw new Error('no progress message reached the page');
    // The finished preview: PreviewImage's frames loaded from /api/view into the node.
    await page.waitForFunction(() => {
      const node = window.app.graph.nodes.find((n) => n.type === 'PreviewImage');
      return node && node.imgs && node.imgs.length > 0 && node.imgs[0].complete &&
             node.imgs[0].naturalWidth === 64;
    }, null, { timeout: 10000 });
    await sleep(500);  // let the canvas draw the preview
    if (screenshot) await page.screenshot({ path: screenshot });
    if (problems.length) throw new Error(problems.length + ' problem(s): ' + problems.slice(0, 40).join(' | '));
    const steps = events.filter((e) => e[0] === 'progress').length;
    console.log(`frontend ${url}: nodes listed, workflow queued, ${steps} progress messages, ` +
                `preview shown${screenshot ? '; screenshot ' + screenshot : ''}`);
  } finally {
    await context.close();
    server.child.kill('SIGTERM');
  }
}

const deadline = setTimeout(() => {
  console.log('FAILED: the frontend check passed its 60 s bound');
  process.exit(1);
}, 60000);
main().then(() => { clearTimeout(deadline); process.exit(0); }).catch((e) => {
  console.log('FAILED: ' + String(e && e.message ? e.message : e).slice(0, 6000));
  process.exit(1);
});
