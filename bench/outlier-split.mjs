// Latency cost of the LLM.int8()-style outlier split (dynamic INT8): one MatMul x[M, K]·W[K, N] with a
// few outlier input channels, plain DynamicQuantizeMatMul vs the split (Mul mask + DQMatMul + Gather +
// float MatMul + Add). Median of --runs after warm-up, 1 intra-op thread. Usage: node bench/outlier-split.mjs
import { applyPlan, makeGraph, makeModel, makeNode, makeValueInfo, makeTensor, Rng, Session, toFloat32, uniformPlan } from '../dist/index.js';
import { floatTensorProto } from '../dist/onnx/index.js';

const args = process.argv.slice(2);
const arg = (n, d) => (args.includes(`--${n}`) ? Number(args[args.indexOf(`--${n}`) + 1]) : d);
const M = arg('m', 128), K = arg('k', 1024), N = arg('n', 4096), OUT = arg('outliers', 8), RUNS = arg('runs', 30);
const rng = new Rng(1);
const w = rng.fillNormal(new Float32Array(K * N), 0.02);
const x = rng.fillNormal(new Float32Array(M * K));
const outliers = Array.from({ length: OUT }, (_, i) => Math.floor(((i + 0.5) * K) / OUT));
for (let r = 0; r < M; r++) for (const k of outliers) x[r * K + k] *= 50;
const graph = makeGraph({ name: 'mm', nodes: [makeNode({ opType: 'MatMul', name: 'mm', inputs: ['x', 'W'], outputs: ['y'] })], inputs: [makeValueInfo('x', 'float32', [M, K])], outputs: [makeValueInfo('y', 'float32', [M, N])], initializers: [floatTensorProto('W', [K, N], w)] });
const model = { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'mm.onnx', baseDir: '.' };
const plan = uniformPlan({ bits: 8, mode: 'dynamic' });
const variants = { float: model, dynamic: applyPlan(model, plan, undefined).model, split: applyPlan(model, plan, undefined, { outlierChannels: () => outliers }).model };
const feeds = { x: makeTensor('float32', [M, K], x) };
let ref;
for (const [name, m] of Object.entries(variants)) {
  const s = await Session.open(m, { threads: 1 });
  const y = toFloat32((await s.run(feeds)).y);
  for (let i = 0; i < 5; i++) await s.run(feeds);
  const t = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await s.release();
  t.sort((a, b) => a - b);
  ref ??= y;
  let num = 0, den = 0;
  for (let i = 0; i < y.length; i++) ((num += (y[i] - ref[i]) ** 2), (den += ref[i] ** 2));
  console.log(`${name}: median ${t[Math.floor(t.length / 2)].toFixed(2)} ms, relative error ${Math.sqrt(num / den).toExponential(2)}`);
}
