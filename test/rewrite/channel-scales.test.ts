import { describe, expect, it } from 'vitest';
import { buildGptModel } from '../../src/fixtures/index.js';
import type { Model } from '../../src/onnx/index.js';
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
