// Runnable library example: `npm run build && node examples/api.mjs` (from the repo root).
// Quantizes the shipped FMNIST CNN to static INT8, checks accuracy against the float model and benchmarks both.
import * as os from 'node:os';
import * as path from 'node:path';
import { bench, evaluate, inspectModel, loadModel, quantize } from 'qtool';

const model = 'fixtures/models/fmnist_cnn.onnx';
const output = path.join(os.tmpdir(), 'fmnist_cnn.int8.onnx');

console.log(`${inspectModel(loadModel(model)).quantizableLayers.length} quantizable layers`);
const { summary } = await quantize(model, { bits: 8, data: 'fixtures/data/fmnist_calib_x.npy', output, force: true });
console.log(`size ${summary.sizeRatio.toFixed(3)}x of fp32`);

const ev = await evaluate(output, {
  data: 'fixtures/data/fmnist_val_x.npy',
  labels: 'fixtures/data/fmnist_val_y.npy',
  reference: model,
  maxDrop: 0.5,
});
console.log(`top-1 ${ev.accuracy.top1} (float ${ev.reference.accuracy.top1}), gate ${ev.gate.passed ? 'passed' : 'failed'}`);

const report = await bench([model, output], { runs: 50, warmup: 5, batchSizes: [1, 32] });
for (const m of report.models) console.log(m.file, m.results.map((r) => `b${r.batchSize} p50 ${r.latency.p50Ms.toFixed(3)} ms`).join(', '));
