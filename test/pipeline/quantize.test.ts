import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { readNpy } from '../../src/data/index.js';
import { writeDocument, QuantizeSummarySchema, type Plan } from '../../src/documents/index.js';
import { UsageError } from '../../src/errors.js';
import { sha256 } from '../../src/files.js';
import { loadModel, opsetVersion } from '../../src/onnx/index.js';
import { quantize } from '../../src/pipeline/index.js';
import { Session } from '../../src/runtime/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';
import { top1 } from '../rewrite/helpers.js';

let dir: string;
let vx: Tensor;
let vy: Tensor;
const FLOAT_TOP1 = { cnn: 0.9255, mlp: 0.9085 };

async function accuracy(file: string): Promise<number> {
  const s = await Session.open(file);
  try {
    return await top1(s, vx, vy);
  } finally {
    await s.release();
  }
}

beforeAll(() => {
  dir = makeTempDir('qtool-quantize-');
  vx = readNpy(FMNIST.valX);
  vy = readNpy(FMNIST.valY);
});

describe('fmnist_cnn static INT8 (calibrated on fmnist_calib_x)', () => {
  let out: string;
  let summary: ReturnType<typeof QuantizeSummarySchema.parse>;
  beforeAll(async () => {
    out = path.join(dir, 'cnn.int8.onnx');
    summary = (await quantize(FMNIST.cnn, { data: FMNIST.calibX, output: out, samples: 512 })).summary;
  });

  test('top-1 drops at most 0.5 points and the file is at most 0.27x of fp32', async () => {
    const acc = await accuracy(out);
    console.log(`fmnist_cnn int8 static: top-1 ${acc} (float ${FLOAT_TOP1.cnn}), size ${summary.sizeRatio.toFixed(4)}x`);
    expect(FLOAT_TOP1.cnn - acc).toBeLessThanOrEqual(0.005);
    expect(fs.statSync(out).size / fs.statSync(FMNIST.cnn).size).toBeLessThanOrEqual(0.27);
    expect(QuantizeSummarySchema.parse(summary)).toBeTruthy();
  });

  test('onnxruntime runs integer kernels with no stray Q/DQ around them', () => {
    const ops = summary.runtime.optimizedOps;
    expect(ops.QLinearConv).toBe(7);
    expect(ops.QGemm).toBe(1);
    expect(ops.QLinearAdd).toBe(2);
    expect(ops.Conv ?? 0).toBe(0);
    expect(ops.DequantizeLinear ?? 0).toBe(0);
    expect(ops.QuantizeLinear ?? 0).toBeLessThanOrEqual(1); // the graph input
    expect(summary.byOpType).toEqual({ Conv: { int8: 7, int4: 0, float: 0 }, Gemm: { int8: 1, int4: 0, float: 0 } });
    expect(summary.fidelity!.outputs[0].top1Agreement).toBeGreaterThanOrEqual(0.95);
  });

  test('deterministic (same inputs, same bytes) and never overwrites without --force', async () => {
    const table = path.join(dir, 'cnn.calib.json');
    // Bias correction needs the data itself, so the table-only run matches the data run without it.
    const first = await quantize(FMNIST.cnn, { data: FMNIST.calibX, output: path.join(dir, 'a.onnx'), samples: 128, fidelitySamples: 0, biasCorrection: 'off', equalize: 'off' });
    writeDocument(table, first.table);
    await quantize(FMNIST.cnn, { calib: table, output: path.join(dir, 'b.onnx') });
    expect(sha256(fs.readFileSync(path.join(dir, 'a.onnx')))).toBe(sha256(fs.readFileSync(path.join(dir, 'b.onnx'))));
    await expect(quantize(FMNIST.cnn, { calib: table, output: path.join(dir, 'b.onnx') })).rejects.toThrow(UsageError);
    await quantize(FMNIST.cnn, { calib: table, output: path.join(dir, 'b.onnx'), force: true });
  });

  test('a plan keeps a layer float and the summary says why', async () => {
    const layers = loadModel(FMNIST.cnn).proto.graph!.node.filter((n) => n.opType === 'Conv');
    const plan: Plan = { kind: 'qtool.plan', version: 1, mode: 'static', defaults: { bits: 8 }, layers: { [layers[0].name]: { bits: 'float' } } };
    const p = path.join(dir, 'plan.json');
    writeDocument(p, plan);
    const r = await quantize(FMNIST.cnn, { data: FMNIST.calibX, samples: 64, plan: p, output: path.join(dir, 'plan.onnx'), fidelitySamples: 0, excludeOps: ['Gemm'] });
    const rec = r.summary.layers.find((l) => l.id === layers[0].name)!;
    expect(rec.bits).toBe('float');
    expect(rec.reason).toMatch(/plan/);
    expect(r.summary.layers.find((l) => l.opType === 'Gemm')!.reason).toMatch(/--exclude-op/);
    expect(r.summary.runtime.optimizedOps.QLinearConv).toBe(6);
  });

  test('--exclude-op with an op type no rule quantizes (a lower-case typo) is a usage error naming the valid ones; nothing is written', async () => {
    const out = path.join(dir, 'typo.onnx');
    await expect(quantize(FMNIST.cnn, { bits: 8, mode: 'dynamic', excludeOps: ['conv'], output: out })).rejects.toMatchObject({ code: 'E_FLAG', exitCode: 2, message: expect.stringMatching(/--exclude-op conv: .*Conv, ConvTranspose.*case-sensitive/) });
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('fmnist_mlp', () => {
  test('INT4 block 32: at most 0.2x the size, top-1 drop at most 1.5 points, MatMulNBits', async () => {
    const out = path.join(dir, 'mlp.int4.onnx');
    const { summary } = await quantize(FMNIST.mlp, { bits: 4, output: out });
    const acc = await accuracy(out);
    console.log(`fmnist_mlp int4: top-1 ${acc} (float ${FLOAT_TOP1.mlp}), size ${summary.sizeRatio.toFixed(4)}x`);
    expect(summary.sizeRatio).toBeLessThanOrEqual(0.2);
    expect(FLOAT_TOP1.mlp - acc).toBeLessThanOrEqual(0.015);
    expect(summary.runtime.optimizedOps.MatMulNBits).toBe(3);
    expect(summary.runtime.optimizedOps.Gemm ?? 0).toBe(0);
  });

  test('INT8 dynamic: top-1 drop at most 0.5 points, DynamicQuantizeMatMul', async () => {
    const out = path.join(dir, 'mlp.int8.onnx');
    const { summary } = await quantize(FMNIST.mlp, { output: out });
    const acc = await accuracy(out);
    console.log(`fmnist_mlp int8 dynamic: top-1 ${acc}, size ${summary.sizeRatio.toFixed(4)}x`);
    expect(summary.mode).toBe('dynamic');
    expect(FLOAT_TOP1.mlp - acc).toBeLessThanOrEqual(0.005);
    expect(summary.runtime.optimizedOps.DynamicQuantizeMatMul).toBe(3);
  });

  // onnxruntime 1.30 fuses MatMul + bias Add into (Fused)Gemm before DQMatMulToMatMulNBits runs, so only
  // some layers become MatMulNBits here; --format nbits is the fast form.
  test('INT4 --format qdq: opset 21 DequantizeLinear(block_size) → MatMul, loads and keeps accuracy', async () => {
    const out = path.join(dir, 'mlp.int4.qdq.onnx');
    const { summary } = await quantize(FMNIST.mlp, { bits: 4, int4Format: 'qdq', output: out, symmetric: true });
    expect(opsetVersion(loadModel(out).proto)).toBe(21);
    expect(summary.runtime.optimizedOps.MatMulNBits).toBeGreaterThanOrEqual(1);
    expect(summary.layers.every((l) => l.scheme === 'qdq-blocked')).toBe(true);
    expect(FLOAT_TOP1.mlp - (await accuracy(out))).toBeLessThanOrEqual(0.015);
  });

  test('8-bit groups with --weight-clip mse', async () => {
    const out = path.join(dir, 'mlp.g.onnx');
    const { summary } = await quantize(FMNIST.mlp, { groupSize: 32, weightClip: 'mse', output: out });
    expect(summary.layers.every((l) => l.bits === 8 && l.scheme === 'matmul-nbits')).toBe(true);
    expect(FLOAT_TOP1.mlp - (await accuracy(out))).toBeLessThanOrEqual(0.005);
  });

  test('static without data is a usage error', async () => {
    await expect(quantize(FMNIST.mlp, { mode: 'static', output: path.join(dir, 'x.onnx') })).rejects.toThrow(/calibration data/);
  });
});
