// Time of `sensitivity` and `search` on fmnist_cnn and the synthetic transformer, the number of
// onnxruntime runs each made, and where the time goes (Hessian probes vs measured terms vs evaluations).
// Run after `npm run build`: node bench/sensitivity.mjs
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { search, sensitivity, readNpy, writeNpy, makeTensor } from '../dist/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-sens-'));
const x = readNpy('fixtures/data/fmnist_val_x.npy');
const y = readNpy('fixtures/data/fmnist_val_y.npy');
writeNpy(path.join(dir, 'vx.npy'), makeTensor('float32', [1000, 1, 28, 28], x.data.slice(0, 1000 * 784)));
writeNpy(path.join(dir, 'vy.npy'), makeTensor('int64', [1000], y.data.slice(0, 1000)));

const cases = [
  { name: 'fmnist_cnn', model: 'fixtures/models/fmnist_cnn.onnx', data: 'fixtures/data/fmnist_calib_x.npy', eval: path.join(dir, 'vx.npy'), evalLabels: path.join(dir, 'vy.npy'), metric: 'accuracy' },
  { name: 'transformer', model: 'fixtures/models/synthetic/transformer.onnx', data: 'fixtures/data/synthetic/transformer_x.npy', eval: 'fixtures/data/synthetic/transformer_x.npy', metric: 'cosine' },
];
const rows = [];
for (const c of cases) {
  if (!fs.existsSync(c.model)) {
    console.error(`skip ${c.name}: ${c.model} missing`);
    continue;
  }
  let t = performance.now();
  const s = await sensitivity(c.model, { data: c.data, probes: 32, samples: 64 });
  const sensMs = performance.now() - t;
  t = performance.now();
  const r = await search(c.model, { data: c.data, eval: c.eval, evalLabels: c.evalLabels, metric: c.metric, bits: [4, 8], maxDrop: 1 }).catch((e) => ({ error: e }));
  const searchMs = performance.now() - t;
  const st = s.stats;
  rows.push({
    model: c.name,
    layers: s.report.layers.length,
    sensitivityMs: Math.round(sensMs),
    sensRuns: st.runs,
    sensSplitMs: Object.fromEntries(Object.entries(st.ms).map(([k, v]) => [k, Math.round(v)])),
    searchMs: Math.round(searchMs),
    search: r.error ? String(r.error.message) : { sensitivityMs: Math.round(r.stats.sensitivityMs), sensitivityRuns: r.stats.sensitivityRuns, evaluationMs: Math.round(r.stats.evaluationMs), evaluationRuns: r.stats.evaluationRuns, evaluations: r.report.evaluationCount, chosen: r.report.evaluations[r.report.chosen].counts },
  });
}
const ms = (x) => (x / 1000).toFixed(2);
console.log('| model | layers | sensitivity s | onnxruntime runs (reference / Hessian probes / measured) | Hessian s | layer-wise s | measured s | search s | search: sensitivity s (runs) | search: evaluations (runs) | chosen |');
console.log('|---|---:|---:|---|---:|---:|---:|---:|---|---|---|');
for (const r of rows) {
  if (typeof r.search === 'string') {
    console.log(`| ${r.model} | ${r.layers} | ${ms(r.sensitivityMs)} | – | – | – | – | – | search failed: ${r.search} | | |`);
    continue;
  }
  console.log(
    `| ${r.model} | ${r.layers} | ${ms(r.sensitivityMs)} | ${r.sensRuns.reference} / ${r.sensRuns.hessian} / ${r.sensRuns.measured} | ${ms(r.sensSplitMs.hessian)} | ${ms(r.sensSplitMs.layerwise)} | ${ms(r.sensSplitMs.measured)} | ` +
      `${ms(r.searchMs)} | ${ms(r.search.sensitivityMs)} (${r.search.sensitivityRuns}) | ${r.search.evaluations} in ${ms(r.search.evaluationMs)} s (${r.search.evaluationRuns} runs) | ${Object.entries(r.search.chosen).map(([b, n]) => `${n}×${b === 'float' ? 'float' : `INT${b}`}`).join(' + ')} |`,
  );
}
console.log('\nSensitivity: 64 calibration samples, up to 32 Hessian probes per layer (stops at 5% standard error). Search: bits 4,8, 8 probes, 32 samples; the transformer uses its 32 synthetic inputs (fixtures/data/synthetic/transformer_x.npy) for both calibration and evaluation, with the cosine metric.');
fs.rmSync(dir, { recursive: true, force: true });
