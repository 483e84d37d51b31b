// The one way these scripts open ComfyUI's frontend: Debian's Chromium, headless, in a fresh
// profile, the page loaded and the app ready, then `workflow` loaded through the frontend's own
// load path (the one a file drop ends in), first-run and missing-model dialogs dismissed.
// Returns {context, page}; the caller closes the context.
const fs = require('fs');
const { chromium } = require('playwright-core');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Debian's Chromium, headless, in a fresh profile folder (what any browser check here starts).
async function launchChromium(profile) {
  fs.rmSync(profile, { recursive: true, force: true });
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1600, height: 1000 },
  });
}

async function openWorkflow(url, workflow, profile) {
  const context = await launchChromium(profile);
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(url, { waitUntil: 'load', timeout: 120000 });
    await page.waitForFunction(() => window.app && window.app.graph && window.app.canvas,
                               null, { timeout: 120000 });
    await page.keyboard.press('Escape');  // a first-run dialog, if any
    await page.evaluate(async (wf) => { await window.app.loadGraphData(wf); }, workflow);
    await sleep(1000);
    await page.keyboard.press('Escape');  // a missing-models or templates dialog, if any
    return { context, page };
  } catch (e) {
    await context.close();
    throw e;
  }
}

module.exports = { launchChromium, openWorkflow, sleep };
