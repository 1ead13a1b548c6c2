import { describe, expect, it } from 'vitest';
import { buildGptModel } from '../../src/fixtures/index.js';
import { makeGraph, makeModel, makeNode, makeValueInfo, tensorToProto, type Model } from '../../src/onnx/index.js';
import { scaleInputChannels, uniformPlan, applyPlan } from '../../src/rewrite/index.js';
import { Session, type Feeds } from '../../src/runtime/index.js';
import { awqScalings, collectLayerInputStats, prepareGptq, scaledStats } from '../../src/sensitivity/index.js';
import { makeTensor, Rng, toFloat32 } from '../../src/tensor/index.js';

const CFG = { dim: 64, blocks: 2, heads: 4, vocab: 512, context: 16, seed: 7, outlierFraction: 0.05 };

function ids(n: number, seed: number): Feeds[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => ({ ids: makeTensor('int64', [1, CFG.context], BigInt64Array.from({ length: CFG.context }, () => BigInt(Math.floor(rng.next() * CFG.vocab)))) }));
}

async function logits(m: Model, feeds: Feeds[]): Promise<Float32Array[]> {
  const s = await Session.open(m, { config: { 'session.qdq_matmulnbits_accuracy_level': '0' } });
  try {
    const out: Float32Array[] = [];
    for (const f of feeds) out.push(toFloat32((await s.run(f)).logits));
    return out;
  } finally {
    await s.release();
  }
}

function relErr(a: Float32Array[], b: Float32Array[]): number {
  let num = 0;
  let den = 0;
  a.forEach((x, i) => x.forEach((v, j) => ((num += (b[i][j] - v) ** 2), (den += v * v))));
  return Math.sqrt(num / den);
}

describe('per-channel input scaling (AWQ / SmoothQuant folding)', () => {
  it('is exact in float: into LayerNormalization γ/β where it can, an explicit Mul elsewhere', async () => {
    const model = buildGptModel(CFG);
    const rng = new Rng(3);
    const s = (k: number) => Float64Array.from({ length: k }, () => Math.exp(rng.normal()));
    const scalings = [
      { activation: 'h0.ln1_out', scales: s(64), layers: ['h0.attn.qkv.matmul'] },
      { activation: 'h0.mlp.gelu.half_out', scales: s(256), layers: ['h0.mlp.2.matmul'] },
      { activation: 'h1.ln2_out', scales: s(64), layers: ['h1.mlp.0.matmul'] },
    ];
    const r = scaleInputChannels(model, scalings);
    expect(r.folds.map((f) => f.into)).toEqual(['layernorm', 'mul', 'layernorm']);
    const feeds = ids(3, 1);
    expect(relErr(await logits(model, feeds), await logits(r.model, feeds))).toBeLessThan(1e-5);
    // The input model is untouched.
    expect(model.proto.graph!.node.length).toBe(r.model.proto.graph!.node.length - 1);
  });

  it('is exact in float when folded into a MatMul (+ bias Add), a Gemm (transB, C) or a decomposed LayerNorm (Mul γ, Add β)', async () => {
    const rng = new Rng(5);
    const K = 8;
    const t = (name: string, dims: number[]) => tensorToProto(name, makeTensor('float32', dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal())));
    const graph = makeGraph({
      name: 'g',
      nodes: [
        makeNode({ opType: 'MatMul', inputs: ['x', 'w1'], outputs: ['a1'], name: 'mm1' }),
        makeNode({ opType: 'Add', inputs: ['a1', 'b1'], outputs: ['h1'], name: 'add1' }),
        makeNode({ opType: 'MatMul', inputs: ['h1', 'w2'], outputs: ['y1'], name: 'mm2' }),
        makeNode({ opType: 'Gemm', inputs: ['x', 'wg', 'cg'], outputs: ['h2'], name: 'gemm', attrs: { transB: 1 } }),
        makeNode({ opType: 'MatMul', inputs: ['h2', 'w3'], outputs: ['y2'], name: 'mm3' }),
        makeNode({ opType: 'Mul', inputs: ['x', 'gamma'], outputs: ['m'], name: 'lnmul' }),
        makeNode({ opType: 'Add', inputs: ['m', 'beta'], outputs: ['h3'], name: 'lnadd' }),
        makeNode({ opType: 'MatMul', inputs: ['h3', 'w4'], outputs: ['y3'], name: 'mm4' }),
      ],
      inputs: [makeValueInfo('x', 'float32', [3, K])],
      outputs: ['y1', 'y2', 'y3'].map((n) => makeValueInfo(n, 'float32', [3, 4])),
      initializers: [t('w1', [K, K]), t('b1', [K]), t('w2', [K, 4]), t('wg', [K, K]), t('cg', [K]), t('w3', [K, 4]), t('gamma', [K]), t('beta', [K]), t('w4', [K, 4])],
    });
    const model: Model = { proto: makeModel({ graph, opsets: { '': 13 } }), file: '<t>', baseDir: '.' };
    const s = () => Float64Array.from({ length: K }, () => Math.exp(rng.normal()));
    const r = scaleInputChannels(model, [
      { activation: 'h1', scales: s(), layers: ['mm2'] },
      { activation: 'h2', scales: s(), layers: ['mm3'] },
      { activation: 'h3', scales: s(), layers: ['mm4'] },
    ]);
    expect(r.folds.map((f) => `${f.into}:${f.node}`)).toEqual(['matmul:mm1', 'matmul:gemm', 'decomposed-layernorm:lnadd']);
    expect(r.model.proto.graph!.node.length).toBe(model.proto.graph!.node.length);
    const x = { x: makeTensor('float32', [3, K], Float32Array.from({ length: 3 * K }, () => rng.normal())) };
    const run = async (m: Model) => {
      const ses = await Session.open(m);
      const o = await ses.run(x);
      await ses.release();
      return ['y1', 'y2', 'y3'].map((n) => toFloat32(o[n]));
    };
    expect(relErr(await run(model), await run(r.model))).toBeLessThan(1e-5);
    // keepWeights: a layer whose weight is fixed is not folded into (a Mul instead).
    const kept = scaleInputChannels(model, [{ activation: 'h1', scales: s(), layers: ['mm2'] }], { keepWeights: new Set(['mm1']) });
    expect(kept.folds[0].into).toBe('mul');
  });

  it('keeps the layers quantizable on a model read from a file (cloned nodes keep their proto2 defaults, e.g. domain)', async () => {
    const { loadModel, GraphIndex, quantizableLayers } = await import('../../src/onnx/index.js');
    const { FMNIST } = await import('../helpers/paths.js');
    const m = loadModel(FMNIST.mlp);
    const layers = quantizableLayers(new GraphIndex(m.proto.graph!, m.file));
    const id = layers[1].id;
    const k = layers[1].weightDims[1];
    const r = scaleInputChannels(m, [{ activation: layers[1].node.input[0], scales: new Float64Array(k).fill(2), layers: [id] }]);
    expect(quantizableLayers(new GraphIndex(r.model.proto.graph!, m.file)).length).toBe(layers.length);
  });

  it('AWQ lowers the layer errors and the INT4 logits error; AWQ+GPTQ lowers it further', async () => {
    const model = buildGptModel(CFG);
    const calib = ids(16, 2);
    const feeds = ids(4, 3);
    const stats = await collectLayerInputStats(model, calib);
    const scalings = awqScalings(model, stats, { bits: 4, blockSize: 32 });
    expect(scalings.length).toBeGreaterThan(0);
    for (const sc of scalings) expect(sc.errorAfter).toBeLessThan(sc.errorBefore);
    const scaled = scaleInputChannels(model, scalings).model;
    const plan = uniformPlan({ bits: 4, mode: 'weight-only' });
    const ref = await logits(model, feeds);
    const rtn = relErr(ref, await logits(applyPlan(model, plan, undefined, { accuracyLevel: 0 }).model, feeds));
    const awq = relErr(ref, await logits(applyPlan(scaled, plan, undefined, { accuracyLevel: 0 }).model, feeds));
    const gplan = uniformPlan({ bits: 4, mode: 'weight-only', algorithm: 'gptq' });
    const st2 = scaledStats(stats, scalings);
    const hook = await prepareGptq(st2, [...st2.keys()], (layer, h) => void applyPlan(scaled, gplan, undefined, { includeNodes: [layer], weightQuantizer: h, accuracyLevel: 0 }));
    const both = relErr(ref, await logits(applyPlan(scaled, gplan, undefined, { weightQuantizer: hook, accuracyLevel: 0 }).model, feeds));
    expect(awq).toBeLessThan(rtn);
    expect(both).toBeLessThan(awq);
  });
});
