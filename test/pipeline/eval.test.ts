import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/data/index.js';
import { EvalReportSchema, parseDocument, stringifyDocument } from '../../src/documents/index.js';
import { GateError, UsageError } from '../../src/errors.js';
import { makeGraph, makeModel, makeNode, makeValueInfo, saveModel } from '../../src/onnx/index.js';
import { evalGate, evalGateError, evaluate } from '../../src/pipeline/index.js';
import { perplexity } from '../../src/quant/index.js';
import { Rng, makeTensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('evaluate on FMNIST', () => {
  it('cnn top-1 on the 2000 validation images is the known 0.9255', async () => {
    const r = await evaluate(FMNIST.cnn, { data: FMNIST.valX, labels: FMNIST.valY, batchSize: 250 });
    expect(r.metric).toBe('accuracy');
    expect(r.samples).toBe(2000);
    expect(r.accuracy!.top1).toBe(0.9255);
    expect(r.value).toBe(0.9255);
    expect(r.accuracy!.top5).toBeGreaterThanOrEqual(r.accuracy!.top1);
    expect(r.gate).toBeUndefined();
    parseDocument(JSON.parse(stringifyDocument(r)), EvalReportSchema);
  });

  it('fidelity of a model against itself is perfect (cosine 1, SQNR inf, agreement 1)', async () => {
    const r = await evaluate(FMNIST.cnn, { data: FMNIST.valX, labels: FMNIST.valY, reference: FMNIST.cnn, maxSamples: 100, metric: 'fidelity', maxDrop: 0 });
    const f = r.reference!.fidelity;
    expect(f.cosine).toBe(1);
    expect(f.sqnrDb).toBeNull();
    expect(f.maxAbsError).toBe(0);
    expect(f.top1Agreement).toBe(1);
    expect(r.reference!.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(r.reference!.accuracy).toEqual(r.accuracy);
    expect(r.gate).toMatchObject({ passed: true, drop: 0 });
    expect(stringifyDocument(r)).toContain('"sqnrDb": null');
  });

  it('compares against another reference: mlp accuracy and a finite SQNR', async () => {
    const r = await evaluate(FMNIST.cnn, { data: FMNIST.valX, labels: FMNIST.valY, reference: FMNIST.mlp, maxDrop: 1 });
    expect(r.reference!.accuracy!.top1).toBe(0.9085);
    expect(r.gate!.drop).toBeCloseTo((0.9085 - 0.9255) * 100, 9);
    expect(r.gate!.passed).toBe(true);
    expect(r.reference!.fidelity.sqnrDb).toBeGreaterThan(0);
    expect(r.reference!.fidelity.cosine).toBeLessThan(1);
  });

  it('--fail-under gates: below fails with GateError, above passes', async () => {
    const fail = await evaluate(FMNIST.mlp, { data: FMNIST.valX, labels: FMNIST.valY, maxSamples: 200, failUnder: 0.99 });
    expect(fail.gate!.passed).toBe(false);
    expect(fail.gate!.reason).toMatch(/below --fail-under 0.99/);
    const err = evalGateError(fail);
    expect(err).toBeInstanceOf(GateError);
    expect(err!.exitCode).toBe(4);
    const pass = await evaluate(FMNIST.mlp, { data: FMNIST.valX, labels: FMNIST.valY, maxSamples: 200, failUnder: 0.5 });
    expect(evalGateError(pass)).toBeUndefined();
  });

  it('refuses options that give nothing to measure', async () => {
    await expect(evaluate(FMNIST.cnn, { data: FMNIST.valX })).rejects.toBeInstanceOf(UsageError);
    await expect(evaluate(FMNIST.cnn, { data: FMNIST.valX, labels: FMNIST.valY, maxDrop: 1 })).rejects.toThrow(/--reference/);
    await expect(evaluate(FMNIST.cnn, { data: FMNIST.valX, reference: FMNIST.cnn, metric: 'accuracy' })).rejects.toThrow(/--labels/);
  });
});

describe('evalGate', () => {
  it('uses percentage points for accuracy and percent for perplexity', () => {
    expect(evalGate('accuracy', 0.9, 0.92, { maxDrop: 1 })).toMatchObject({ passed: false });
    expect(evalGate('accuracy', 0.915, 0.92, { maxDrop: 1 }).drop).toBeCloseTo(0.5, 9);
    expect(evalGate('perplexity', 11, 10, { maxDrop: 5 })).toMatchObject({ passed: false });
    expect(evalGate('perplexity', 10.4, 10, { maxDrop: 5 }).drop).toBeCloseTo(4, 9);
    expect(evalGate('perplexity', 12, undefined, { failUnder: 11 }).passed).toBe(false);
    expect(evalGate('fidelity', 0.99, 1, { failUnder: 0.995 }).passed).toBe(false);
  });
});

describe('evaluate perplexity (language-model logits)', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
    // Identity "LM": logits [N, T, V] are the input; labels [N, T] are next-token ids.
    const graph = makeGraph({
      name: 'lm',
      nodes: [makeNode({ opType: 'Identity', inputs: ['x'], outputs: ['logits'] })],
      inputs: [makeValueInfo('x', 'float32', ['batch', 4, 7])],
      outputs: [makeValueInfo('logits', 'float32', ['batch', 4, 7])],
    });
    saveModel({ proto: makeModel({ graph, opsets: { '': 17 } }), file: 'lm.onnx', baseDir: dir }, path.join(dir, 'lm.onnx'));
    const rng = new Rng(3);
    const x = makeTensor('float32', [6, 4, 7], rng.fillNormal(new Float32Array(6 * 4 * 7)));
    const y = makeTensor('int64', [6, 4], BigInt64Array.from({ length: 24 }, (_, i) => BigInt(i % 5 === 4 ? -1 : rng.int(7))));
    writeNpy(path.join(dir, 'x.npy'), x);
    writeNpy(path.join(dir, 'y.npy'), y);
  });

  it('matches perplexity() over all tokens and ignores negative ids', async () => {
    const { readNpy } = await import('../../src/data/index.js');
    const x = readNpy(path.join(dir, 'x.npy'));
    const y = readNpy(path.join(dir, 'y.npy'));
    const expected = perplexity(x.data as Float32Array, y.data as BigInt64Array, 7);
    const r = await evaluate(path.join(dir, 'lm.onnx'), { data: path.join(dir, 'x.npy'), labels: path.join(dir, 'y.npy'), batchSize: 4, reference: path.join(dir, 'lm.onnx'), maxDrop: 0 });
    expect(r.metric).toBe('perplexity');
    expect(r.perplexity!.tokens).toBe(expected.tokens);
    expect(r.perplexity!.tokens).toBeLessThan(24);
    expect(r.perplexity!.perplexity).toBeCloseTo(expected.perplexity, 9);
    expect(r.gate!.passed).toBe(true);
    expect(r.accuracy).toBeUndefined();
  });
});
