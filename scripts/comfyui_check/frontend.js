// Opens a shipped workflow in ComfyUI's frontend (headless Debian Chromium), points its loaders
// at the tiny models as a user would pick them in the widgets, queues it with the Queue button,
// waits (bounded) for the run to finish and saves a screenshot.
//
//   node frontend.js URL WORKFLOW.json '["Target.input=value", ...]' SCREENSHOT.png PROFILE_DIR
// Prints one line; exits 1 on any failure.
const fs = require('fs');
const { openWorkflow, sleep } = require('./open_workflow');

const [url, workflowPath, setsJson, screenshot, profile] = process.argv.slice(2);
const sets = JSON.parse(setsJson);

async function history() {
  const r = await fetch(url + '/history');
  return r.json();
}

async function main() {
  const workflow = JSON.parse(fs.readFileSync(workflowPath, 'utf8'));
  const { context, page } = await openWorkflow(url, workflow, profile);
  try {
    const missing = await page.evaluate((assignments) => {
      const misses = [];
      const nodes = window.app.graph.nodes || window.app.graph._nodes;
      for (const a of assignments) {
        const eq = a.indexOf('=');
        const lhs = a.slice(0, eq), value = a.slice(eq + 1);
        const dot = lhs.lastIndexOf('.');
        const target = lhs.slice(0, dot), name = lhs.slice(dot + 1);
        let hit = false;
        for (const node of nodes) {
          if (node.type !== target && node.title !== target && String(node.id) !== target) continue;
          const widget = (node.widgets || []).find((w) => w.name === name);
          if (!widget) continue;
          widget.value = typeof widget.value === 'number' ? Number(value) : value;
          if (widget.callback) widget.callback(widget.value);
          hit = true;
        }
        if (!hit) misses.push(a);
      }
      window.app.graph.setDirtyCanvas(true, true);
      return misses;
    }, sets);
    if (missing.length) throw new Error('no widget for ' + missing.join(', '));

    const before = new Set(Object.keys(await history()));
    const button = page.locator('[data-testid="queue-button"]').first();
    if (await button.count()) {
      await button.click({ timeout: 30000 });
    } else {
      await page.evaluate(() => window.app.queuePrompt(0));
    }
    let entry = null;
    for (let i = 0; i < 300 && !entry; ++i) {  // at most ~300 s
      await sleep(1000);
      const h = await history();
      for (const [id, e] of Object.entries(h)) {
        if (!before.has(id) && e.status && e.status.completed !== undefined &&
            (e.status.completed || e.status.status_str === 'error')) entry = e;
      }
    }
    await sleep(1500);  // let the previews draw
    await page.screenshot({ path: screenshot });
    if (!entry) throw new Error('the queued run did not finish within 300 s');
    if (!entry.status.completed) {
      const err = (entry.status.messages || []).find((m) => m[0] === 'execution_error');
      throw new Error('the run failed: ' + JSON.stringify(err ? err[1].exception_message : entry.status));
    }
    const images = Object.values(entry.outputs).reduce((n, o) => n + (o.images || []).length, 0);
    console.log(`queued from the page, finished with ${images} images shown; screenshot ${screenshot}`);
  } finally {
    await context.close();
  }
}

main().catch((e) => {
  console.log(String(e && e.message ? e.message : e).slice(0, 600));
  process.exit(1);
});
