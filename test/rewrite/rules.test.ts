import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { floatTensorProto, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { optimizedOpCounts } from '../../src/pipeline/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { FIXTURES } from '../helpers/paths.js';
import { countOps, minmaxTable } from './helpers.js';

interface OpCase {
  name: string;
  opset: number;
  attrs: Record<string, number | number[]>;
  x: number[];
  w: number[];
  bias: boolean;
  mode: 'static' | 'dynamic' | 'weight-only';
  bits: 4 | 8;
  symmetric?: boolean;
  format?: 'nbits' | 'qdq';
  /** The plan lists node n0 with the default settings (weight-only convolutions need an entry). */
  listed?: boolean;
  ops: Record<string, number>;
  rtol: number;
}

/** One-node model: y = op(x, W[, B]) with seeded weights. */
function oneNode(op: string, c: OpCase): Model {
  const rng = new Rng(5);
  const n = (d: number[]) => d.reduce((a, b) => a * b, 1);
  const inits = [floatTensorProto('W', c.w, rng.fillNormal(new Float32Array(n(c.w)), 0.3))];
  const inputs = ['x', 'W'];
  if (c.bias) {
    const outCh = op === 'Gemm' ? (c.attrs.transB ? c.w[0] : c.w[1]) : c.w[0];
    inits.push(floatTensorProto('B', [outCh], rng.fillNormal(new Float32Array(outCh), 0.1)));
    inputs.push('B');
  }
  const graph = makeGraph({ name: 'g', nodes: [makeNode({ opType: op, name: 'n0', inputs, outputs: ['y'], attrs: c.attrs })], inputs: [makeValueInfo('x', 'float32', c.x)], outputs: [makeValueInfo('y', 'float32')], initializers: inits });
  return { proto: makeModel({ graph, opsets: { '': c.opset } }), file: `${op}.onnx`, baseDir: os.tmpdir() };
}

for (const file of fs.readdirSync(path.join(FIXTURES, 'ops')).filter((f) => f.endsWith('.json')).sort()) {
  const spec = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'ops', file), 'utf8')) as { op: string; cases: OpCase[] };
  describe(`${spec.op} rule (fixtures/ops/${file})`, () => {
    for (const c of spec.cases) {
      test(c.name, async () => {
        const model = oneNode(spec.op, c);
        const rng = new Rng(9);
        const feeds = [0, 1].map(() => ({ x: makeTensor('float32', c.x, rng.fillNormal(new Float32Array(c.x.reduce((a, b) => a * b, 1)))) }));
        const table = c.mode === 'static' ? await minmaxTable(model, feeds) : undefined;
        const plan = uniformPlan({ bits: c.bits, mode: c.mode, symmetric: c.symmetric });
        if (c.listed) plan.layers.n0 = { ...plan.defaults };
        const r = applyPlan(model, plan, table, { int4Format: c.format });
        // The input model is untouched (out of place); generated nodes carry provenance.
        expect(countOps(model)).toEqual({ [spec.op]: 1 });
        for (const n of r.model.proto.graph!.node) if (n.opType !== spec.op) expect(n.metadataProps.find((p) => p.key === 'qtool.origin')?.value).toBe('n0');
        const ops = await optimizedOpCounts(r.model, c.name);
        for (const [op, k] of Object.entries(c.ops)) expect(ops[op] ?? 0, `${op} in ${JSON.stringify(ops)}`).toBe(k);
        const f = await Session.open(model);
        const q = await Session.open(r.model);
        for (const fd of feeds) {
          const a = (await f.run(fd)).y.data as Float32Array;
          const b = (await q.run(fd)).y.data as Float32Array;
          let maxRef = 0;
          let maxErr = 0;
          for (let i = 0; i < a.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(a[i]));
            maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
          }
          expect(maxErr).toBeLessThanOrEqual(c.rtol * maxRef + 1e-6);
        }
      });
    }
  });
}

function twoMatMuls(): Model {
  const rng = new Rng(3);
  const graph = makeGraph({
    name: 'g',
    nodes: [makeNode({ opType: 'MatMul', name: 'a', inputs: ['x', 'W'], outputs: ['y1'] }), makeNode({ opType: 'MatMul', name: 'b', inputs: ['y1', 'W'], outputs: ['y'] })],
    inputs: [makeValueInfo('x', 'float32', [2, 32])],
    outputs: [makeValueInfo('y', 'float32')],
    initializers: [floatTensorProto('W', [32, 32], rng.fillNormal(new Float32Array(1024)))],
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'shared.onnx', baseDir: os.tmpdir() };
}

test('a weight shared by two MatMuls is packed once for MatMulNBits and the float original is dropped', async () => {
  const r = applyPlan(twoMatMuls(), uniformPlan({ bits: 4, mode: 'weight-only' }), undefined);
  const g = r.model.proto.graph!;
  expect(countOps(r.model)).toEqual({ MatMulNBits: 2 });
  expect(g.initializer.filter((t) => t.name.endsWith('_nbits')).length).toBe(1);
  expect(g.initializer.find((t) => t.name === 'W')).toBeUndefined();
  expect((await optimizedOpCounts(r.model, 'shared')).MatMulNBits).toBe(2);
});

test('non-finite ranges never reach a scale, and the layer reading one stays float (not dynamic)', () => {
  const t = (lo: number, hi: number, extra: object = {}) => ({ range: [lo, hi] as [number, number], method: 'minmax' as const, min: lo, max: hi, count: 1, ...extra });
  const table = { kind: 'qtool.calibration' as const, version: 1 as const, model: { file: '', sha256: '' }, method: 'minmax' as const, settings: {}, samples: 1, tensors: { x: t(-1e9, 3), y1: t(-1, 1, { nonFinite: true }), y: t(-1, 1) } };
  const r = applyPlan(twoMatMuls(), uniformPlan({ bits: 8, mode: 'static' }), table);
  expect(r.model.proto.graph!.node.some((n) => n.opType === 'QuantizeLinear')).toBe(false);
  // x's range is large but finite, with no structure of a mask: an ordinary (graph-input) activation.
  expect(r.summary.layers.map((l) => l.scheme)).toEqual(['dynamic', 'float']);
  expect(r.summary.layers[1].reason).toMatch(/non-finite/);
});
