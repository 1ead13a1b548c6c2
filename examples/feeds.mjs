// Runnable library example: `npm run build && node examples/feeds.mjs` (from the repo root).
// Calibrates and quantizes the shipped FMNIST CNN with the feeds the app already builds for inference
// (its own preprocessing code, onnxruntime tensors), then checks accuracy with in-memory labels.
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { calibrate, evaluate, loadModel, openDataset, quantize, readNpy } from 'qtool';

// The app's preprocessing, as it runs at inference time: 8-bit 28×28 pixels → normalized float32.
const MEAN = 0.286;
const STD = 0.353;
function preprocess(pixels) {
  const x = new Float32Array(784);
  for (let i = 0; i < 784; i++) x[i] = (pixels[i] / 255 - MEAN) / STD;
  return new ort.Tensor('float32', x, [1, 1, 28, 28]);
}

// The app's images: raw pixels (here recovered from the shipped sets, which are stored normalized).
function imagesOf(file) {
  const t = readNpy(file);
  return Array.from({ length: t.dims[0] }, (_, k) => Uint8Array.from(t.data.subarray(k * 784, (k + 1) * 784), (v) => Math.round((v * STD + MEAN) * 255)));
}
const calibImages = imagesOf('fixtures/data/fmnist_calib_x.npy');
const valImages = imagesOf('fixtures/data/fmnist_val_x.npy');
const valLabels = Array.from(readNpy('fixtures/data/fmnist_val_y.npy').data, Number);

// A function returning an async generator: qtool pulls one feed at a time and may start it again.
const calibrationFeeds = async function* () {
  for (const pixels of calibImages) yield { input: preprocess(pixels) };
};

const modelFile = 'fixtures/models/fmnist_cnn.onnx';
const model = loadModel(modelFile);
const dataset = await openDataset(calibrationFeeds, model);
const table = await calibrate(model, dataset, { method: 'percentile' });
console.log(`calibrated ${Object.keys(table.tensors).length} tensors on ${dataset.sampleCount} samples`);

const output = path.join(os.tmpdir(), 'fmnist_cnn.feeds.int8.onnx');
const { summary } = await quantize(modelFile, { bits: 8, data: calibrationFeeds, output, force: true });
console.log(`size ${summary.sizeRatio.toFixed(3)}x of fp32`);

const ev = await evaluate(output, { data: valImages.map((p) => ({ input: preprocess(p) })), labels: valLabels, reference: modelFile, maxDrop: 1 });
console.log(`top-1 ${ev.accuracy.top1} (float ${ev.reference.accuracy.top1}), gate ${ev.gate.passed ? 'passed' : 'failed'}`);
