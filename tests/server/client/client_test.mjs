// A ComfyUI API client from npm (@saintno/comfyui-sdk) against wan-serve, unchanged: it queues
// the shipped t2v workflow (converted to the API format here, as the frontend's graphToPrompt
// does, from /object_info), follows its progress over the socket, downloads the outputs through
// /view and checks them bit-identical to what wan-run writes for the same prompt.
//
//   node client_test.mjs WAN_SERVE WAN_RUN REPO_ROOT WORK_DIR
// Exit 0: passed; 1: failed (one line says why); 77: skipped (the SDK is not installed).
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';

const [serveBinary, runBinary, repo, work] = process.argv.slice(2);
const kSkip = 77;
const here = path.dirname(new URL(import.meta.url).pathname);

let sdk;
try {
  sdk = createRequire(path.join(here, 'package.json'))('@saintno/comfyui-sdk');
} catch (e) {
  console.log('SKIPPED: @saintno/comfyui-sdk is not installed (cd tests/server/client && npm ci)');
  process.exit(kSkip);
}
const { ComfyApi, CallWrapper, PromptBuilder } = sdk;
const { startServe } = createRequire(import.meta.url)('../serve_process.js');

const engineFlags = (dir) => ['--models', path.join(repo, 'tests/data/models'),
                              '--output', path.join(dir, 'output'), '--input', path.join(dir, 'input'),
                              '--temp', path.join(dir, 'temp'), '--vram', '400MiB', '--reserve', '0'];

// The tiny-model settings of the runner tests (tests/runner/runner_test_util.h), at 128x128:
// libx264's bytes for 64x64 frames vary with the process's memory layout (the same frames give
// another file when only the output folder's name changes); from 128x128 on they do not.
const kTiny = {
  LoadDiT: { model_name: 'dit_t2v_tiny.safetensors' },
  LoadT5: { model_name: 't5_tiny_encoder.pth', tokenizer: 'wan_tiny' },
  LoadVAE: { model_name: 'vae_tiny.pth' },
  Sample: { width: 128, height: 128, frames: 9, steps: 2 },
};

// UI workflow -> API prompt: widgets_values fill the widget inputs in schema order (the extra
// control_after_generate value skipped), links become [node id, output slot].
function toApiPrompt(workflow, objectInfo) {
  const links = new Map(workflow.links.map((l) => [l[0], l]));
  const prompt = {};
  for (const node of workflow.nodes) {
    const schema = objectInfo[node.type];
    if (!schema) throw new Error('no schema for ' + node.type);
    const inputs = {};
    for (const input of node.inputs || [])
      if (input.link != null) {
        const link = links.get(input.link);
        inputs[input.name] = [String(link[1]), link[2]];
      }
    const values = [...(node.widgets_values || [])];
    for (const group of ['required', 'optional']) {
      for (const name of (schema.input_order || {})[group] || []) {
        const spec = schema.input[group][name];
        const type = spec[0];
        const isWidget = Array.isArray(type) || ['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO'].includes(type);
        if (!isWidget || name in inputs || values.length === 0) continue;
        inputs[name] = values.shift();
        if (spec[1] && spec[1].control_after_generate) values.shift();
      }
    }
    prompt[String(node.id)] = { class_type: node.type, inputs, _meta: { title: node.title || node.type } };
  }
  return prompt;
}

function startServer(dir) {
  return startServe(serveBinary, ['--user-directory', path.join(dir, 'user'), ...engineFlags(dir)]);
}

async function main() {
  fs.rmSync(work, { recursive: true, force: true });
  const served = path.join(work, 'served'), ran = path.join(work, 'ran');
  fs.mkdirSync(served, { recursive: true });
  const server = startServer(served);
  try {
    const url = `http://127.0.0.1:${await server.port}`;
    const api = new ComfyApi(url, 'sdk-client');
    await api.init(3, 500).waitForReady();

    const objectInfo = await (await fetch(url + '/object_info')).json();
    const workflow = JSON.parse(fs.readFileSync(path.join(repo, 'workflows/t2v/baseline.json')));
    const prompt = toApiPrompt(workflow, objectInfo);
    const ids = {};
    for (const [id, node] of Object.entries(prompt)) {
      ids[node.class_type] = id;
      Object.assign(node.inputs, kTiny[node.class_type] || {});
    }
    const builder = new PromptBuilder(prompt, ['seed'], ['video', 'preview'])
      .setInputNode('seed', `${ids.Sample}.inputs.seed`)
      .setOutputNode('video', ids.SaveVideo)
      .setOutputNode('preview', ids.PreviewImage)
      .input('seed', 7);

    let progress = 0;
    const outputs = await new Promise((resolve, reject) => {
      new CallWrapper(api, builder)
        .onProgress(() => { progress += 1; })
        .onFinished((data) => resolve(data))
        .onFailed((err) => reject(new Error('the SDK reports a failure: ' + (err && err.message))))
        .run();
      setTimeout(() => reject(new Error('no result within 40 s')), 40000);
    });
    if (progress === 0) throw new Error('no progress event reached the client');

    // wan-run on the very prompt the client posted, in its key order (outputs embed it).
    fs.mkdirSync(ran, { recursive: true });
    const file = path.join(ran, 'prompt.json');
    fs.writeFileSync(file, JSON.stringify(builder.workflow));
    const result = spawnSync(runBinary, [file, ...engineFlags(ran)], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error('wan-run failed: ' + result.stderr.slice(-400));

    // Every download is bit-identical to what wan-run wrote: SaveVideo's MP4 (libx264 runs at a
    // fixed thread count, so the CPU layout does not change its bytes) and PreviewImage's PNGs.
    const compared = [];
    const ranPreviews = fs.readdirSync(path.join(ran, 'temp'));
    for (const key of ['video', 'preview']) {
      for (const item of outputs[key].images) {
        const body = Buffer.from(await (await fetch(api.getPathImage(item))).arrayBuffer());
        // Preview names carry a random prefix (as ComfyUI's); the counter suffix pairs them.
        const counter = item.filename.slice(item.filename.lastIndexOf('_', item.filename.length - 6));
        const reference = key === 'preview'
          ? path.join(ran, 'temp', ranPreviews.find((name) => name.endsWith(counter)) || 'none')
          : path.join(ran, item.type, item.subfolder || '', item.filename);
        if (!fs.existsSync(reference)) throw new Error('no ' + reference);
        if (!body.equals(fs.readFileSync(reference)))
          throw new Error(`${key} ${item.filename}: downloaded bytes differ from ${reference}`);
        compared.push(item.filename);
      }
    }
    console.log(`sdk client: queued, ${progress} progress events, ${compared.length} outputs ` +
                `downloaded (bit-identical to wan-run's)`);
    api.destroy && api.destroy();
  } finally {
    server.child.kill('SIGTERM');
  }
}

const deadline = setTimeout(() => { console.log('FAILED: past the 60 s bound'); process.exit(1); }, 60000);
main().then(() => { clearTimeout(deadline); process.exit(0); }).catch((e) => {
  console.log('FAILED: ' + String(e && e.message ? e.message : e).slice(0, 900));
  process.exit(1);
});
