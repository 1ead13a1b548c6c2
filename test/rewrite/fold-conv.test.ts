import { create } from '@bufbuild/protobuf';
import { describe, expect, test } from 'vitest';
import { loadModel, ValueInfoProtoSchema, type Model } from '../../src/onnx/index.js';
import { foldConvAffine } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { REAL_MODELS } from '../helpers/paths.js';

function ops(m: Model): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of m.proto.graph!.node) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
}

async function outputs(m: Model, x: Float32Array): Promise<Float32Array> {
  // Optimizations off: onnxruntime must not fold the BN itself, so the float reference is the model as written.
  const s = await Session.open(m, { optimization: 'disabled' });
  try {
    const r = await s.run({ x: makeTensor('float32', [2, 3, 48, 192], x) });
    return Object.values(r)[0].data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('foldConvAffine (the one conv-folding pass: BatchNormalization, Mul/Add by constants)', () => {
  const cls = loadModel(REAL_MODELS.paddleCls);
  const x = new Rng(3).fillUniform(new Float32Array(2 * 3 * 48 * 192), -1, 1);

  test('PaddleOCR cls: all 35 Conv → BatchNormalization pairs fold; outputs unchanged; BN parameters dropped', async () => {
    const before = ops(cls);
    const r = foldConvAffine(cls);
    // 35 BNs go; the pass also folds HardSigmoid/Mul/Add after and scalar ops before convs (counted apart)
    expect(before.BatchNormalization).toBe(35);
    expect(r.folded.length).toBeGreaterThanOrEqual(35);
    const after = ops(r.model);
    expect(after.BatchNormalization ?? 0).toBe(0);
    expect(after.Conv).toBe(before.Conv);
    // 4 BN parameter Constants per BN and the 35 folded Convs' weight Constants go; new weights and biases are initializers
    expect(after.Constant).toBeLessThanOrEqual(before.Constant - 4 * 35 - 35);
    expect(r.model.proto.graph!.initializer.length).toBeGreaterThanOrEqual(cls.proto.graph!.initializer.length + 2 * 35);
    // the input model is untouched
    expect(ops(cls)).toEqual(before);
    const a = await outputs(cls, x);
    const b = await outputs(r.model, x);
    let maxErr = 0;
    for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
    expect(maxErr).toBeLessThan(1e-4);
  });

  test('a Conv whose output is also read elsewhere (here: a graph output) is not folded', () => {
    const first = cls.proto.graph!.node.find((n) => n.opType === 'Conv')!;
    const g = cls.proto.graph!;
    const m: Model = { ...cls, proto: { ...cls.proto, graph: { ...g, output: [...g.output, create(ValueInfoProtoSchema, { name: first.output[0] })] } } };
    const r = foldConvAffine(m);
    expect(r.folded.length).toBeGreaterThanOrEqual(34);
    expect(ops(r.model).BatchNormalization).toBe(1);
  });

  test('a model without BatchNormalization comes back as the same object', () => {
    const r = foldConvAffine(foldConvAffine(cls).model);
    expect(r.folded).toHaveLength(0);
  });
});
