import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { floatTensorProto, loadModel, makeGraph, makeModel, makeNode, makeValueInfo, walkGraphs, type Model } from '../../src/onnx/index.js';
import { applyPlan, foldConvAffine, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { minmaxTable } from './helpers.js';

const C = 16;

/**
 * A MobileNet-style block at opset 13: conv → hard-swish x·Clip(x+3, 0, 6)/6 → a learnable scalar
 * scale and shift → 1×1 conv (no padding); then a squeeze-excitation gate (GlobalAveragePool → conv →
 * HardSigmoid → Mul) and a padded depthwise conv reading the gated tensor.
 */
function block(rng: Rng): Model {
  const w = (n: number, s = 0.3) => Float32Array.from({ length: n }, () => rng.normal() * s);
  const c = (name: string, v: number) => floatTensorProto(name, [], [v]);
  const graph = makeGraph({
    name: 'block',
    nodes: [
      makeNode({ opType: 'Conv', name: 'conv0', inputs: ['x', 'W0', 'B0'], outputs: ['c0'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }),
      makeNode({ opType: 'Add', name: 'hs_add', inputs: ['c0', 'three'], outputs: ['hs_a'] }),
      makeNode({ opType: 'Clip', name: 'hs_clip', inputs: ['hs_a', 'zero', 'six'], outputs: ['hs_c'] }),
      makeNode({ opType: 'Mul', name: 'hs_mul', inputs: ['c0', 'hs_c'], outputs: ['hs_m'] }),
      makeNode({ opType: 'Div', name: 'hs_div', inputs: ['hs_m', 'six'], outputs: ['hs'] }),
      makeNode({ opType: 'Mul', name: 'aff_mul', inputs: ['hs', 'k'], outputs: ['aff_m'] }),
      makeNode({ opType: 'Add', name: 'aff_add', inputs: ['aff_m', 'd'], outputs: ['aff'] }),
      makeNode({ opType: 'Conv', name: 'conv1', inputs: ['aff', 'W1', 'B1'], outputs: ['c1'], attrs: { kernel_shape: [1, 1] } }),
      makeNode({ opType: 'Relu', name: 'relu1', inputs: ['c1'], outputs: ['r1'] }),
      makeNode({ opType: 'GlobalAveragePool', name: 'se_pool', inputs: ['r1'], outputs: ['se_p'] }),
      makeNode({ opType: 'Conv', name: 'se_conv', inputs: ['se_p', 'W2', 'B2'], outputs: ['se_c'], attrs: { kernel_shape: [1, 1] } }),
      makeNode({ opType: 'HardSigmoid', name: 'se_hs', inputs: ['se_c'], outputs: ['se_g'], attrs: { alpha: { float: 0.2 }, beta: { float: 0.5 } } }),
      makeNode({ opType: 'Mul', name: 'se_mul', inputs: ['r1', 'se_g'], outputs: ['se'] }),
      makeNode({ opType: 'Conv', name: 'dw', inputs: ['se', 'W3', 'B3'], outputs: ['y'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: C } }),
    ],
    inputs: [makeValueInfo('x', 'float32', ['n', 3, 8, 8])],
    outputs: [makeValueInfo('y', 'float32', ['n', C, 8, 8])],
    initializers: [
      floatTensorProto('W0', [C, 3, 3, 3], w(C * 27)), floatTensorProto('B0', [C], w(C)),
      floatTensorProto('W1', [C, C, 1, 1], w(C * C)), floatTensorProto('B1', [C], w(C)),
      floatTensorProto('W2', [C, C, 1, 1], w(C * C)), floatTensorProto('B2', [C], w(C)),
      floatTensorProto('W3', [C, 1, 3, 3], w(C * 9)), floatTensorProto('B3', [C], w(C)),
      c('three', 3), c('zero', 0), c('six', 6), c('k', 1.3), c('d', 0.2),
    ],
  });
  return { proto: makeModel({ graph, opsets: { '': 13 } }), file: 'block.onnx', baseDir: '.' };
}

async function run(m: Model, x: Float32Array, n: number, opt?: string): Promise<Float32Array> {
  const s = await Session.open(m, { optimization: opt ? 'all' : 'disabled', ...(opt ? { optimizedModelFilePath: opt } : {}) });
  try {
    return Object.values(await s.run({ x: makeTensor('float32', [n, 3, 8, 8], x) }))[0].data as Float32Array;
  } finally {
    await s.release();
  }
}

const ops = (m: Model) => {
  const c: Record<string, number> = {};
  for (const g of walkGraphs(m.proto.graph!)) for (const n of g.node) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
};

describe('static INT8 of hard-swish / squeeze-excitation blocks', () => {
  const rng = new Rng(5);
  const model = block(rng);
  const n = 8;
  const x = rng.fillUniform(new Float32Array(n * 3 * 64), -2, 2);

  it('float folds: /6 and the scalar affine go into the unpadded 1×1 conv, HardSigmoid into its conv (Clip(0, 1) left); outputs unchanged', async () => {
    const r = foldConvAffine(model);
    const after = ops(r.model);
    expect(after.Div ?? 0).toBe(0);
    expect(after.HardSigmoid ?? 0).toBe(0);
    // hard-swish keeps Add(3), Clip, Mul(x, ·); the SE gate a Mul; the affine is gone
    expect(after.Mul).toBe(2);
    expect(after.Add).toBe(1);
    expect(after.Clip).toBe(2);
    const a = await run(model, x, n);
    const b = await run(r.model, x, n);
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
    expect(err).toBeLessThan(1e-4);
  });

  it('a scalar shift before a padded conv is not folded (zero padding does not commute with it)', () => {
    const g = model.proto.graph!;
    // Make conv1 padded 3×3: the Add(d) must stay, the scales still fold.
    const W1 = floatTensorProto('W1', [C, C, 3, 3], new Float32Array(C * C * 9).fill(0.01));
    const nodes = g.node.map((nd) => (nd.name === 'conv1' ? makeNode({ opType: 'Conv', name: 'conv1', inputs: ['aff', 'W1', 'B1'], outputs: ['c1'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }) : nd));
    const m: Model = { ...model, proto: { ...model.proto, graph: { ...g, node: nodes, initializer: g.initializer.map((t) => (t.name === 'W1' ? W1 : t)) } } };
    const after = ops(foldConvAffine(m).model);
    expect(after.Add).toBe(2);
    // Div(6) and Mul(k) collapse into one Mul by k/6
    expect(after.Div ?? 0).toBe(0);
    expect(after.Mul).toBe(3);
  });

  it('--integer-elementwise: no float island between the QLinear ops (QLinearAdd/QLinearMul), and the output stays close', async () => {
    const table = await minmaxTable(foldConvAffine(model).model, [{ x: makeTensor('float32', [n, 3, 8, 8], x) }]);
    const dir = makeTempDir('qtool-int8-elementwise-');
    const plan = uniformPlan({ bits: 8, mode: 'static' });
    const ref = await run(model, x, n);
    for (const integerElementwise of [false, true]) {
      const r = applyPlan(model, plan, table, { integerElementwise });
      const opt = path.join(dir, `opt-${integerElementwise}.onnx`);
      const y = await run(r.model, x, n, opt);
      const o = ops(loadModel(opt, { checkExternalData: false }));
      let dot = 0, na = 0, nb = 0;
      for (let i = 0; i < ref.length; i++) { dot += ref[i] * y[i]; na += ref[i] * ref[i]; nb += y[i] * y[i]; }
      expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.99);
      if (integerElementwise) {
        expect(o.QLinearAdd).toBe(1);
        expect(o.QLinearMul).toBe(2);
        for (const f of ['Add', 'Mul', 'Clip', 'Div', 'HardSigmoid']) expect(o[f] ?? 0, f).toBe(0);
        expect(o.DequantizeLinear ?? 0).toBeLessThanOrEqual(1);
      } else {
        // Default: hard-swish stays float; the SE gate's Mul still fuses (onnxruntime sees DQ, DQ → Mul → Q
        // once the HardSigmoid is a Clip the conv's uint8 output absorbs).
        expect(o.QLinearMul ?? 0).toBe(1);
        expect(o.QLinearAdd ?? 0).toBe(0);
        expect(o.Mul ?? 0).toBe(1);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
