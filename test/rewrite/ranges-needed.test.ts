import * as path from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import { describe, expect, test } from 'vitest';
import type { CalibrationTable, Plan } from '../../src/documents/index.js';
import { InternalError } from '../../src/errors.js';
import { GraphIndex, loadModel, ModelProtoSchema, walkGraphs, type Model } from '../../src/onnx/index.js';
import { applyPlan, rangesNeeded, uniformPlan, type ApplyPlanOptions } from '../../src/rewrite/index.js';
import { FMNIST, MODELS, REAL_MODELS } from '../helpers/paths.js';

/** FNV-1a of a name: deterministic, varied synthetic ranges. */
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * A table with a range for every runtime tensor of every graph (no model run needed: byte identity
 * only depends on which entries exist). With `faults`, some entries are missing, non-finite or
 * mask-like, so the rules' "no usable range" branches run too.
 */
function fullTable(model: Model, faults: boolean): CalibrationTable {
  const tensors: CalibrationTable['tensors'] = {};
  for (const g of walkGraphs(model.proto.graph!)) {
    const consts = new Set([...g.initializer.map((t) => t.name), ...g.node.filter((n) => n.opType === 'Constant').flatMap((n) => n.output)]);
    const names = [...g.input.map((v) => v.name), ...g.node.flatMap((n) => [...n.input, ...n.output])];
    for (const name of names) {
      if (!name || consts.has(name) || tensors[name]) continue;
      const h = hash(name);
      if (faults && h % 17 === 0) continue;
      let lo = h % 3 === 0 ? 0 : -((h % 7) + 1) / 3;
      let hi = 0.5 + (h % 5);
      if (faults && h % 19 === 0) [lo, hi] = [-1e5, 1e5];
      const nonFinite = faults && h % 23 === 0;
      tensors[name] = { range: [lo, hi], method: 'minmax', min: lo, max: hi, count: 100, ...(nonFinite ? { nonFinite: true } : {}) };
    }
  }
  return { kind: 'qtool.calibration', version: 1, model: { file: model.file, sha256: '' }, method: 'minmax', settings: {}, samples: 1, tensors };
}

function restrict(table: CalibrationTable, names: readonly string[]): CalibrationTable {
  const tensors: CalibrationTable['tensors'] = {};
  for (const n of names) if (table.tensors[n]) tensors[n] = table.tensors[n];
  return { ...table, tensors };
}

const bytes = (model: Model, plan: Plan, table: CalibrationTable, opts: ApplyPlanOptions) => toBinary(ModelProtoSchema, applyPlan(model, plan, table, opts).model.proto);

/** Every runtime tensor name of the model (what calibration observes without a restriction, and more). */
function tensorCount(table: CalibrationTable): number {
  return Object.keys(table.tensors).length;
}

const static8 = uniformPlan({ bits: 8, mode: 'static' });
const static4 = uniformPlan({ bits: 4, mode: 'static' });

const cases: [string, string][] = [
  ['fmnist_cnn', FMNIST.cnn],
  ['fmnist_mlp', FMNIST.mlp],
  ['synthetic cnn', path.join(MODELS, 'synthetic', 'cnn.onnx')],
  ['synthetic transformer', path.join(MODELS, 'synthetic', 'transformer.onnx')],
  ['synthetic if', path.join(MODELS, 'synthetic', 'if.onnx')],
  ['PaddleOCR det', REAL_MODELS.paddleDet],
  ['PaddleOCR rec', REAL_MODELS.paddleRec],
  ['PaddleOCR cls', REAL_MODELS.paddleCls],
];

describe('rangesNeeded: a table restricted to it rewrites byte for byte like the full table', () => {
  for (const [label, file] of cases) {
    test(label, () => {
      const model = loadModel(file);
      const variants: [Plan, ApplyPlanOptions][] = [
        [static8, {}],
        [static8, { activationType: 'int8' }],
        [static8, { foldActivations: false, narrowRanges: false }],
        [static4, {}],
      ];
      let neededDefault = 0;
      for (const faults of [false, true]) {
        const full = fullTable(model, faults);
        for (const [plan, opts] of variants) {
          const needed = rangesNeeded(model, plan, opts);
          expect(new Set(needed).size).toBe(needed.length);
          expect(Buffer.from(bytes(model, plan, restrict(full, needed), opts)).equals(Buffer.from(bytes(model, plan, full, opts)))).toBe(true);
          if (plan === static8 && !opts.activationType && opts.foldActivations === undefined) neededDefault = needed.length;
        }
        if (!faults) console.log(`${label}: default static plan reads ${neededDefault} of ${tensorCount(full)} tensor ranges`);
      }
      expect(neededDefault).toBeLessThan(tensorCount(fullTable(model, false)));
    });
  }

  test('dynamic and weight-only plans read no range', () => {
    const model = loadModel(FMNIST.cnn);
    expect(rangesNeeded(model, uniformPlan({ bits: 8, mode: 'dynamic' }))).toEqual([]);
    expect(rangesNeeded(model, uniformPlan({ bits: 4, mode: 'weight-only' }))).toEqual([]);
  });

  test('fmnist_cnn: every listed range matters (dropping any one changes the model), and Relu-folded conv outputs are not listed', () => {
    const model = loadModel(FMNIST.cnn);
    const full = fullTable(model, false);
    const needed = rangesNeeded(model, static8);
    const ref = Buffer.from(bytes(model, static8, full, {}));
    for (const t of needed) {
      const without = restrict(full, needed.filter((n) => n !== t));
      expect(Buffer.from(bytes(model, static8, without, {})).equals(ref), t).toBe(false);
    }
    const g = model.proto.graph!;
    const reluInputs = new Set(g.node.filter((n) => n.opType === 'Relu').map((n) => n.input[0]));
    const convOutputs = g.node.filter((n) => n.opType === 'Conv').map((n) => n.output[0]);
    for (const y of convOutputs) if (reluInputs.has(y)) expect(needed).not.toContain(y);
    // The model input (first conv's input) is read.
    expect(needed).toContain(g.input[0].name);
  });
});

describe("applyPlan and rangesNeeded with the caller's GraphIndex (ModelContext.index)", () => {
  test('give the same bytes and names as with their own index, reuse it across calls, and refuse an index of another graph', () => {
    const model = loadModel(path.join(MODELS, 'synthetic', 'cnn.onnx'));
    const other = loadModel(FMNIST.mlp);
    const index = new GraphIndex(model.proto.graph!, model.file);
    const table = fullTable(model, true);
    for (const plan of [static8, static4, uniformPlan({ bits: 4, mode: 'weight-only' })]) {
      expect(Buffer.from(bytes(model, plan, table, { index })).equals(Buffer.from(bytes(model, plan, table, {})))).toBe(true);
      expect(rangesNeeded(model, plan, { index })).toEqual(rangesNeeded(model, plan));
    }
    // The shared index is read, never changed: a second pass with it is byte-identical to the first.
    expect(Buffer.from(bytes(model, static8, table, { index })).equals(Buffer.from(bytes(model, static8, table, { index })))).toBe(true);
    expect(() => applyPlan(other, static8, table, { index })).toThrow(InternalError);
    expect(() => rangesNeeded(other, static8, { index })).toThrow(/not of this model/);
  });
});
