import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { calibrate, calibrationTensors } from '../../src/calibrate/index.js';
import { openDataset } from '../../src/data/index.js';
import { CalibrationTableSchema, readDocument, writeDocument, type CalibrationTable } from '../../src/documents/index.js';
import { InputError } from '../../src/errors.js';
import { loadModel } from '../../src/onnx/index.js';
import { calibrateModelFile, planCalibrationTensors, quantize, staticPlanCalibrationTensors } from '../../src/pipeline/index.js';
import { rangesNeeded, uniformPlan } from '../../src/rewrite/index.js';
import { FMNIST, REAL_MODELS } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
const static8 = uniformPlan({ bits: 8, mode: 'static' });

beforeAll(() => {
  dir = makeTempDir('qtool-quantize-calib-');
});

describe('quantize --data calibrates only the ranges its plan reads', () => {
  let restricted: CalibrationTable;
  let full: CalibrationTable;
  let restrictedOut: string;
  beforeAll(async () => {
    const model = loadModel(FMNIST.cnn);
    restrictedOut = path.join(dir, 'cnn.plan.onnx');
    restricted = (await quantize(FMNIST.cnn, { data: FMNIST.calibX, samples: 128, output: restrictedOut, fidelitySamples: 0, biasCorrection: 'off', equalize: 'off' })).table!;
    full = await calibrate(model, await openDataset(FMNIST.calibX, model, { maxSamples: 128 }), { batchSize: 16 });
  });

  test('fmnist_cnn: 12 of 20 tensors (none of the 7 Relu inputs, no logits), same ranges as the full table', () => {
    const model = loadModel(FMNIST.cnn);
    expect(restricted.settings.tensors).toBe('plan');
    expect(full.settings.tensors).toBe('all');
    expect(Object.keys(full.tensors)).toHaveLength(20);
    const names = Object.keys(restricted.tensors);
    expect(names).toEqual(planCalibrationTensors(model, static8));
    expect(names).toHaveLength(12);
    const g = model.proto.graph!;
    const reluInputs = new Set(g.node.filter((n) => n.opType === 'Relu').map((n) => n.input[0]));
    for (const n of names) {
      expect(reluInputs.has(n) || n === 'logits', n).toBe(false);
      expect(restricted.tensors[n].range, n).toEqual(full.tensors[n].range);
    }
  });

  test('the model equals the one quantized from the full table', async () => {
    const calib = path.join(dir, 'full.calib.json');
    writeDocument(calib, full);
    const out = path.join(dir, 'cnn.full.onnx');
    await quantize(FMNIST.cnn, { calib, output: out });
    expect(fs.readFileSync(out).equals(fs.readFileSync(restrictedOut))).toBe(true);
  });

  test('a plan table refuses a rewrite that reads more (int8 activations read the unfolded conv outputs)', async () => {
    const calib = path.join(dir, 'plan.calib.json');
    writeDocument(calib, restricted);
    const err = await quantize(FMNIST.cnn, { calib, output: path.join(dir, 'x.onnx'), activationType: 'int8' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe('E_CALIB_INCOMPLETE');
    expect((err as Error).message).toMatch(/plan\.calib\.json: calibration table: expected a range for every tensor this plan reads, got none for 7 \(e\.g\. "\/stem\/stem\.0\/Conv_output_0"/);
  });
});

describe('qtool calibrate (calibrateModelFile)', () => {
  test("default: the tensors any static plan reads ('plans'), enough for int8 activations; --all-tensors: every float tensor", async () => {
    const plans = path.join(dir, 'plans.calib.json');
    const { table } = await calibrateModelFile(FMNIST.cnn, { data: FMNIST.calibX, maxSamples: 32, output: plans });
    expect(table.settings.tensors).toBe('plans');
    expect(Object.keys(table.tensors)).toEqual(staticPlanCalibrationTensors(loadModel(FMNIST.cnn)));
    expect(Object.keys(table.tensors)).toHaveLength(19);
    expect(readDocument(plans, CalibrationTableSchema).settings.tensors).toBe('plans');
    const r = await quantize(FMNIST.cnn, { calib: plans, output: path.join(dir, 'int8act.onnx'), activationType: 'int8' });
    expect(r.summary.layers.map((l) => l.scheme)).toEqual(Array(8).fill('static-qdq'));

    const all = await calibrateModelFile(FMNIST.cnn, { data: FMNIST.calibX, maxSamples: 32, output: path.join(dir, 'all.calib.json'), allTensors: true });
    expect(all.table.settings.tensors).toBe('all');
    expect(all.summary.tensorCount).toBe(20);
  });

  test('PaddleOCR det: static plans read 117 of 331 tensors, the default plan 106 (conv affine ops folded first)', () => {
    const model = loadModel(REAL_MODELS.paddleDet);
    expect(calibrationTensors(model)).toHaveLength(331);
    expect(staticPlanCalibrationTensors(model)).toHaveLength(117);
    expect(planCalibrationTensors(model, static8)).toHaveLength(106);
    expect(rangesNeeded(model, uniformPlan({ bits: 8, mode: 'dynamic' }))).toEqual([]);
  });
});
