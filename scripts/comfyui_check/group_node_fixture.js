// Records what ComfyUI's frontend itself makes of legacy group nodes, as a test fixture for
// wan-run's reader: opens a shipped workflow in headless Chromium, converts sets of nodes to
// group nodes with the frontend's own command, sets widget values on the group instances, then
// writes the saved workflow and the API prompt the frontend queues for it (graphToPrompt).
//
//   node group_node_fixture.js URL WORKFLOW.json GROUPS.json OUT.json PROFILE_DIR
// GROUPS.json: [[["NodeType", ...], "GroupName"], ...], converted in that order.
// Needs a running ComfyUI with the pack (scripts/comfyui_check.sh sets one up).
const fs = require('fs');
const { openWorkflow, sleep } = require('./open_workflow');

const [url, workflowPath, groupsPath, outPath, profile] = process.argv.slice(2);
const groups = JSON.parse(fs.readFileSync(groupsPath, 'utf8'));

async function group(page, types, name) {
  await page.evaluate((wanted) => {
    const nodes = window.app.graph.nodes.filter((n) => wanted.includes(n.type));
    window.app.canvas.deselectAll();
    for (const n of nodes) window.app.canvas.select(n);
    // Not awaited: the command waits for the name dialog.
    window.app.extensionManager.command.execute('Comfy.GroupNode.ConvertSelectedNodesToGroupNode');
  }, types);
  const input = page.locator('.p-dialog input').first();
  await input.waitFor({ timeout: 20000 });
  await input.fill(name);
  await input.press('Enter');
  for (let i = 0; i < 50; ++i) {
    await sleep(200);
    const done = await page.evaluate((n) => window.app.graph.nodes.some(
        (x) => x.type === 'workflow>' + n), name);
    if (done) return;
  }
  throw new Error('group node ' + name + ' was not created');
}

async function main() {
  const workflow = JSON.parse(fs.readFileSync(workflowPath, 'utf8'));
  const { context, page } = await openWorkflow(url, workflow, profile);
  try {
    for (const [types, name] of groups) await group(page, types, name);
    // Values set on the group instances, as a user would in their widgets.
    const widgets = await page.evaluate(() => {
      const set = {};
      for (const node of window.app.graph.nodes) {
        if (!String(node.type).startsWith('workflow>')) continue;
        for (const w of node.widgets || []) {
          if (w.name === 'steps') w.value = 3;
          if (w.name === 'seed') w.value = 7;
          if (typeof w.value === 'string' && w.value.startsWith('Two anthropomorphic')) {
            w.value = 'A red fox runs through fresh snow.';
          }
        }
        set[node.type] = (node.widgets || []).map((w) => [w.name, w.value]);
      }
      return set;
    });
    const result = await page.evaluate(async () => {
      const saved = window.app.graph.serialize();
      const { output } = await window.app.graphToPrompt();
      return { workflow: saved, prompt: output };
    });
    result.group_widgets = widgets;
    fs.writeFileSync(outPath, JSON.stringify(result, null, 1));
    console.log('PASS group node fixture: ' + Object.keys(result.prompt).length + ' API nodes');
  } finally {
    await context.close();
  }
}

main().catch((e) => { console.log('FAIL group node fixture: ' + e.message); process.exit(1); });
