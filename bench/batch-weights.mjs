#!/usr/bin/env node
/**
 * node bench/batch-weights.mjs — measure what the recipe weights of `qtool batch --shard` stand for.
 *
 * The shard balancer estimates a job's cost as model bytes × recipe weight (src/pipeline/batch-shard.ts).
 * This script times each recipe term in-process (no child start-up) on the fixtures, a warm-up run and then
 * RUNS (default 5) runs each, median, and prints each term relative to a dynamic INT8 quantization of the same model, so the
 * weight table can be checked against measurement. Needs a build (npm run build).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const api = await import(path.join(ROOT, 'dist/index.js'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-weights-'));
const calibX = path.join(ROOT, 'fixtures/data/fmnist_calib_x.npy');
const valX = path.join(ROOT, 'fixtures/data/fmnist_val_x.npy');
const valY = path.join(ROOT, 'fixtures/data/fmnist_val_y.npy');
const models = [
  ['fmnist_mlp', path.join(ROOT, 'fixtures/models/fmnist_mlp.onnx')],
  ['fmnist_cnn', path.join(ROOT, 'fixtures/models/fmnist_cnn.onnx')],
];
const RUNS = Number(process.env.RUNS ?? 5);

/** [name, quantize options | 'gate'] — each term is measured against `dynamic`. */
const recipes = [
  ['dynamic', { mode: 'dynamic', fidelitySamples: 0 }],
  ['weight-only int4', { bits: 4, fidelitySamples: 0 }],
  ['int4 + weightClip mse', { bits: 4, weightClip: 'mse', fidelitySamples: 0 }],
  ['static minmax 256 samples', { mode: 'static', data: calibX, samples: 256, fidelitySamples: 0 }],
  ['static percentile 256', { mode: 'static', data: calibX, method: 'percentile', samples: 256, fidelitySamples: 0 }],
  ['static entropy 256', { mode: 'static', data: calibX, method: 'entropy', samples: 256, fidelitySamples: 0 }],
  ['static mse 256', { mode: 'static', data: calibX, method: 'mse', samples: 256, fidelitySamples: 0 }],
  ['static minmax 256 + fidelity 64', { mode: 'static', data: calibX, samples: 256, fidelitySamples: 64 }],
  ['static minmax 256 + maxDrop 1', { mode: 'static', data: calibX, samples: 256, maxDrop: 1, fidelitySamples: 0 }],
  ['gate: eval 1000 samples', 'gate'],
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const [name, model] of models) {
  const mb = fs.statSync(model).size / 1e6;
  let base;
  for (const [recipe, opts] of recipes) {
    const times = [];
    for (let r = -1; r < RUNS; r++) {
      const out = path.join(tmp, `${name}.${Math.max(r, 0)}.onnx`);
      const t0 = performance.now();
      if (opts === 'gate') await api.evaluate(path.join(tmp, `${name}.0.onnx`), { data: valX, labels: valY, reference: model, maxSamples: 1000 });
      else await api.quantize(model, { ...opts, output: out, force: true });
      if (r >= 0) times.push(performance.now() - t0); // r = -1: warm-up, not counted
    }
    const ms = median(times);
    if (recipe === 'dynamic') base = ms;
    rows.push([name, recipe, ms.toFixed(0), (ms / mb).toFixed(0), (ms / base).toFixed(2)]);
    process.stderr.write(`${name} ${recipe}: ${ms.toFixed(0)} ms\n`);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
const header = ['model', 'recipe', 'ms (median)', 'ms/MB', '× dynamic'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
