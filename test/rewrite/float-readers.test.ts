import { describe, expect, test } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, walkGraphs } from '../../src/onnx/index.js';
import { applyPlan, foldConvAffine, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { REAL_MODELS } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';
import { minmaxTable } from './helpers.js';

describe('layers kept float next to quantized ones (opset 10, PaddleOCR cls)', () => {
  test('read the float original, not a DequantizeLinear: the model loads and onnxruntime keeps them float', async () => {
    const model = foldConvAffine(loadModel(REAL_MODELS.paddleCls)).model;
    const x = makeTensor('float32', [2, 3, 48, 192], new Rng(1).fillUniform(new Float32Array(2 * 3 * 48 * 192), -1, 1));
    const table = await minmaxTable(model, [{ x }]);
    // Conv.7 reads a folded Relu's output (needs the refolded copy); Conv.13 a plain one.
    const float = ['p2o.Conv.7', 'p2o.Conv.13', 'p2o.Conv.23'];
    const plan = { ...uniformPlan({ bits: 8, mode: 'static' as const }), layers: Object.fromEntries(float.map((id) => [id, { bits: 'float' as const }])) };
    const r = applyPlan(model, plan, table, {});
    const g = r.model.proto.graph!;
    const producers = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
    for (const id of float) {
      const conv = g.node.find((n) => n.name === id)!;
      expect(producers.get(conv.input[0])?.opType, id).not.toBe('DequantizeLinear');
    }
    const dir = makeTempDir('qtool-float-readers-');
    const opt = path.join(dir, 'opt.onnx');
    const s = await Session.open(r.model, { optimizedModelFilePath: opt });
    const ref = await Session.open(model);
    try {
      const a = Object.values(await ref.run({ x }))[0].data as Float32Array;
      const b = Object.values(await s.run({ x }))[0].data as Float32Array;
      let dot = 0, na = 0, nb = 0;
      for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
      expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.99);
    } finally {
      await s.release();
      await ref.release();
    }
    let qconv = 0;
    for (const gg of walkGraphs(loadModel(opt, { checkExternalData: false }).proto.graph!)) for (const n of gg.node) if (n.opType === 'QLinearConv') qconv++;
    expect(qconv).toBe(53 - float.length);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
