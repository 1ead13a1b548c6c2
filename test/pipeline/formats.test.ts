import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { LATENCY_CACHE_FILE, type InterleavedResult, type LatencyCandidate } from '../../src/bench/index.js';
import { FormatDecisionSchema } from '../../src/documents/index.js';
import { GraphIndex, getAttr, loadModel, quantizableLayers, walkGraphs, type Model } from '../../src/onnx/index.js';
import { decideFormat, explainSlowdown, latencyBatches, latencyStep, type FormatVariant, type LatencyBatch, type MeasureLatency } from '../../src/pipeline/formats.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let mlp: Model;
let batches: LatencyBatch[];

/** A measurement that returns the given ratios (by label) for every batch size, and counts its calls. */
function fakeMeasure(ratios: Record<string, number>, q1 = ratios): MeasureLatency & { calls: number; seen: string[][] } {
  const f = (async (candidates: readonly LatencyCandidate[]): Promise<InterleavedResult> => {
    f.calls++;
    f.seen.push(candidates.map((c) => c.label));
    return {
      candidates: candidates.map((c) => ({ label: c.label, medianMs: ratios[c.label], ratio: ratios[c.label], ratioQ1: q1[c.label], ratioQ3: ratios[c.label] })),
      rounds: 10,
      seconds: 0.1,
      threads: 1,
      loadAverage: 0,
    };
  }) as MeasureLatency & { calls: number; seen: string[][] };
  f.calls = 0;
  f.seen = [];
  return f;
}

function nbitsVariants(isDefault4 = true): FormatVariant[] {
  return [4, 0].map((level) => ({
    label: `matmul-nbits acc ${level}`,
    accuracyLevel: level,
    isDefault: (level === 4) === isDefault4,
    build: () => applyPlan(mlp, uniformPlan({ bits: 4, mode: 'weight-only', blockSize: 32 }), undefined, { accuracyLevel: level }).model,
  }));
}

function accuracyLevels(m: Model): number[] {
  const out: number[] = [];
  for (const g of walkGraphs(m.proto.graph!)) for (const n of g.node) if (n.opType === 'MatMulNBits') out.push(Number(getAttr(n, 'accuracy_level')?.i ?? 0));
  return out;
}

beforeAll(async () => {
  mlp = loadModel(FMNIST.mlp);
  batches = await latencyBatches(mlp, FMNIST.calibX, 8);
});

describe('decideFormat (injected measurement)', () => {
  test('latency feeds: batch 1 and the requested batch, from the data', () => {
    expect(batches.map((b) => b.batchSize)).toEqual([1, 8]);
    expect(Object.values(batches[1].feeds)[0].dims[0]).toBe(8);
  });

  test('keeps the faster accuracy level measured, and writes it', async () => {
    for (const [fast, slow] of [[0, 4], [4, 0]]) {
      const measure = fakeMeasure({ float: 1, [`matmul-nbits acc ${fast}`]: 0.7, [`matmul-nbits acc ${slow}`]: 1.3 });
      const r = await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure });
      expect(r.decision.chosen).toBe(`matmul-nbits acc ${fast}`);
      expect(r.decision.accuracyLevel).toBe(fast);
      expect(new Set(accuracyLevels(r.model))).toEqual(new Set([fast]));
      expect(r.slowerAt).toEqual([]);
      // float first (the reference), then every variant; once per batch size
      expect(measure.seen).toEqual([['float', 'matmul-nbits acc 4', 'matmul-nbits acc 0'], ['float', 'matmul-nbits acc 4', 'matmul-nbits acc 0']]);
      expect(FormatDecisionSchema.parse(r.decision).candidates.map((c) => c.ratios)).toEqual([[1, 1], [fast === 4 ? 0.7 : 1.3, fast === 4 ? 0.7 : 1.3], [fast === 0 ? 0.7 : 1.3, fast === 0 ? 0.7 : 1.3]]);
    }
  });

  test('a faster candidate that misses the accuracy constraint is never chosen; float is never chosen', async () => {
    const variants = nbitsVariants();
    variants[1].isEligible = false;
    variants[1].note = 'drop over budget';
    const measure = fakeMeasure({ float: 0.5, 'matmul-nbits acc 4': 1.4, 'matmul-nbits acc 0': 0.6 });
    const r = await decideFormat(mlp, variants, batches, { seconds: 1, measure });
    expect(r.decision.chosen).toBe('matmul-nbits acc 4');
    expect(r.decision.candidates.find((c) => c.label === 'matmul-nbits acc 0')).toMatchObject({ isEligible: false, note: 'drop over budget' });
    // slower than float in ≥ 3 of 4 rounds at both batch sizes: reported, not hidden
    expect(r.slowerAt).toEqual([1, 8]);
  });

  test('ties keep the default format', async () => {
    const measure = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 0.9, 'matmul-nbits acc 0': 0.9 });
    expect((await decideFormat(mlp, nbitsVariants(true), batches, { seconds: 1, measure })).decision.chosen).toBe('matmul-nbits acc 4');
    expect((await decideFormat(mlp, nbitsVariants(false), batches, { seconds: 1, measure })).decision.chosen).toBe('matmul-nbits acc 0');
  });

  test('slower only within the noise (lower quartile ≤ 1) is still reported, marked as within the noise', async () => {
    const measure = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 1.05, 'matmul-nbits acc 0': 1.1 }, { float: 1, 'matmul-nbits acc 4': 0.97, 'matmul-nbits acc 0': 1.02 });
    const r = await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure });
    expect(r.decision.chosen).toBe('matmul-nbits acc 4');
    expect(r.slowerAt).toEqual([1, 8]);
    expect(r.clearlySlowerAt).toEqual([]);
    const faster = await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure: fakeMeasure({ float: 1, 'matmul-nbits acc 4': 0.95, 'matmul-nbits acc 0': 1.1 }) });
    expect(faster.slowerAt).toEqual([]);
  });

  test('the measurement is cached by model hash, variant and machine; a cached decision is marked and not re-measured', async () => {
    const dir = makeTempDir('qtool-latency-cache-');
    const cache = { dir, modelSha256: 'abc', variant: { plan: 'int4' } };
    const m1 = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 1.2, 'matmul-nbits acc 0': 0.8 });
    const r1 = await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure: m1, cache });
    expect(r1.decision.isCached).toBe(false);
    expect(fs.existsSync(path.join(dir, LATENCY_CACHE_FILE))).toBe(true);
    const m2 = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 0.1, 'matmul-nbits acc 0': 5 });
    const r2 = await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure: m2, cache });
    expect(m2.calls).toBe(0);
    expect(r2.decision).toMatchObject({ isCached: true, chosen: 'matmul-nbits acc 0', rounds: 0 });
    // another model hash misses the cache
    const r3 = await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure: m2, cache: { ...cache, modelSha256: 'def' } });
    expect(m2.calls).toBe(2);
    expect(r3.decision.chosen).toBe('matmul-nbits acc 4');
    // a corrupt cache file is an empty cache
    fs.writeFileSync(path.join(dir, LATENCY_CACHE_FILE), '{not json');
    const m4 = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 1.2, 'matmul-nbits acc 0': 0.8 });
    expect((await decideFormat(mlp, nbitsVariants(), batches, { seconds: 1, measure: m4, cache })).decision.isCached).toBe(false);
    expect(m4.calls).toBe(2);
  });
});

describe('explainSlowdown (onnxruntime optimized graphs)', () => {
  test('4-bit weight-only convolutions: weight DQ every run and float convolutions are named', async () => {
    const cnn = loadModel(FMNIST.cnn);
    const convs = quantizableLayers(new GraphIndex(cnn.proto.graph!, cnn.file)).filter((l) => l.opType === 'Conv');
    const q = applyPlan(cnn, { ...uniformPlan({ bits: 4, mode: 'weight-only', blockSize: 32 }), layers: Object.fromEntries(convs.map((l) => [l.id, { bits: 4 as const }])) }, undefined, {}).model;
    const causes = await explainSlowdown(cnn, q);
    expect(causes.join('\n')).toMatch(/weight-only DQ every run: \d+ DequantizeLinear/);
  });

  test('MatMulNBits is named', async () => {
    const q = applyPlan(mlp, uniformPlan({ bits: 4, mode: 'weight-only', blockSize: 32 }), undefined, {}).model;
    expect((await explainSlowdown(mlp, q, 4)).join('\n')).toMatch(/\d+ MatMulNBits/);
  });
});

describe('latencyStep', () => {
  const plan = uniformPlan({ bits: 4, mode: 'weight-only', blockSize: 32 });
  const at = (level: number) => applyPlan(mlp, plan, undefined, { accuracyLevel: level });
  const base = () => ({ float: mlp, rewritten: at(4), rewriteAtLevel: at, plan, data: FMNIST.calibX, batchSize: 8, seconds: 1, modelSha256: 'x', variantKey: {} });

  test('MatMulNBits without --accuracy-level: both levels measured, the faster written and recorded', async () => {
    const measure = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 0.9, 'matmul-nbits acc 0': 0.6 });
    const r = await latencyStep({ ...base(), measure });
    expect(r.accuracyLevel).toBe(0);
    expect(new Set(accuracyLevels(r.rewritten.model))).toEqual(new Set([0]));
    expect(r.tuning).toMatchObject({ chosen: 'matmul-nbits acc 0', accuracyLevel: 0 });
    expect(r.latency).toMatchObject({ chosen: 'matmul-nbits acc 0', source: 'measured', slowerThanFloatAt: [] });
    expect(r.warnings).toEqual([]);
  });

  test('--accuracy-level given: not tuned, only float vs the written model', async () => {
    const measure = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 0.9 });
    const r = await latencyStep({ ...base(), accuracyLevel: 4, measure });
    expect(measure.seen[0]).toEqual(['float', 'matmul-nbits acc 4']);
    expect(r.tuning).toBeUndefined();
  });

  test('a plan that records a decision replays it without comparing again', async () => {
    const first = await latencyStep({ ...base(), measure: fakeMeasure({ float: 1, 'matmul-nbits acc 4': 0.9, 'matmul-nbits acc 0': 0.6 }) });
    const replayPlan = { ...plan, tuning: first.tuning };
    const measure = fakeMeasure({ float: 1, 'matmul-nbits acc 0': 0.7 });
    const r = await latencyStep({ ...base(), plan: replayPlan, rewritten: at(0), measure });
    expect(measure.seen[0]).toEqual(['float', 'matmul-nbits acc 0']);
    expect(r.accuracyLevel).toBe(0);
    expect(r.tuning).toBeUndefined();
    expect(r.latency.source).toBe('plan');
  });

  test('slower than float: a warning with the measured ratio and the causes from the optimized graph', async () => {
    const measure = fakeMeasure({ float: 1, 'matmul-nbits acc 4': 1.4, 'matmul-nbits acc 0': 1.3 });
    const r = await latencyStep({ ...base(), measure });
    expect(r.latency.slowerThanFloatAt).toEqual([1, 8]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/SLOWER than float .*matmul-nbits acc 0: 1\.30x at batch 1, 1\.30x at batch 8.*also measured matmul-nbits acc 4 1\.40x\/1\.40x.*MatMulNBits/);
    expect(r.latency.causes.join(' ')).toMatch(/MatMulNBits/);
  });
});

describe('latencyStep, static: layers profiled slower quantized than float', () => {
  test('when the default is slower than float, a candidate keeps them float; it is written (and its plan returned) only when it measures faster', async () => {
    const cnn = loadModel(FMNIST.cnn);
    const { minmaxTable } = await import('../rewrite/helpers.js');
    const { readNpy } = await import('../../src/data/index.js');
    const x = readNpy(FMNIST.calibX);
    const table = await minmaxTable(cnn, [{ input: { ...x, dims: [32, 1, 28, 28], data: (x.data as Float32Array).subarray(0, 32 * 784) } as never }]);
    const plan = uniformPlan({ bits: 8, mode: 'static' });
    const convs = quantizableLayers(new GraphIndex(cnn.proto.graph!, cnn.file)).filter((l) => l.opType === 'Conv');
    const slowId = convs[1].id;
    // QLinearConv nodes are named <conv>_token_<n>; float NCHWc convs after the tensor they produce.
    const profile = async () => [
      convs.map((l) => ({ name: `${l.node.output[0]}_nchwc`, opType: 'Conv', microsPerRun: 100 })),
      convs.map((l) => ({ name: `${l.node.name}_token_1`, opType: 'QLinearConv', microsPerRun: l.id === slowId ? 500 : 40 })),
    ];
    const label = 'static-qdq, 1 slow layer float';
    const input = {
      float: cnn,
      rewritten: applyPlan(cnn, plan, table, {}),
      rewriteAtLevel: () => applyPlan(cnn, plan, table, {}),
      rewriteWithPlan: (p: typeof plan) => applyPlan(cnn, p, table, {}),
      profile,
      plan,
      data: FMNIST.calibX,
      batchSize: 8,
      seconds: 1,
      modelSha256: 'x',
      variantKey: {},
    };
    const faster = await latencyStep({ ...input, measure: fakeMeasure({ float: 1, 'static-qdq': 1.2, [label]: 0.6 }) });
    expect(faster.latency.chosen).toBe(label);
    expect(faster.plan.layers[slowId]).toEqual({ bits: 'float' });
    expect(faster.rewritten.summary.layers.find((l) => l.id === slowId)?.bits).toBe('float');
    expect(faster.tuning?.candidates.find((c) => c.label === label)?.note).toMatch(new RegExp(`${slowId} 0\\.50 vs 0\\.10 ms`));
    const slower = await latencyStep({ ...input, measure: fakeMeasure({ float: 1, 'static-qdq': 1.2, [label]: 1.3 }) });
    expect(slower.latency.chosen).toBe('static-qdq');
    expect(slower.plan.layers[slowId]).toBeUndefined();
    // Already faster than float: fully quantized stays, nothing is profiled.
    let profiled = 0;
    const fast = await latencyStep({ ...input, profile: async () => (profiled++, profile()), measure: fakeMeasure({ float: 1, 'static-qdq': 0.8, [label]: 0.1 }) });
    expect(fast.latency.chosen).toBe('static-qdq');
    expect(fast.latency.candidates.map((c) => c.label)).toEqual(['float', 'static-qdq']);
    expect(profiled).toBe(0);
  });
});

describe('latencyStep, static vs dynamic INT8 (--compare-dynamic, injected measurement)', () => {
  test('the faster of static and dynamic is written, its plan mode returned and the decision recorded; a slower dynamic is never kept', async () => {
    const { minmaxTable } = await import('../rewrite/helpers.js');
    const { readNpy } = await import('../../src/data/index.js');
    const x = readNpy(FMNIST.calibX);
    const table = await minmaxTable(mlp, [{ input: { ...x, dims: [16, 1, 28, 28], data: (x.data as Float32Array).subarray(0, 16 * 784) } as never }]);
    const plan = uniformPlan({ bits: 8, mode: 'static' });
    const input = {
      float: mlp,
      rewritten: applyPlan(mlp, plan, table, {}),
      rewriteAtLevel: () => applyPlan(mlp, plan, table, {}),
      rewriteDynamic: (p: typeof plan) => applyPlan(mlp, p, undefined, {}),
      plan,
      data: FMNIST.calibX,
      batchSize: 8,
      seconds: 1,
      modelSha256: 'x',
      variantKey: {},
    };
    const dyn = await latencyStep({ ...input, measure: fakeMeasure({ float: 1, 'static-qdq': 0.7, dynamic: 0.5 }) });
    expect(dyn.latency.chosen).toBe('dynamic');
    expect(dyn.plan.mode).toBe('dynamic');
    expect(dyn.rewritten.summary.mode).toBe('dynamic');
    expect(FormatDecisionSchema.parse(dyn.tuning).chosen).toBe('dynamic');
    const stat = await latencyStep({ ...input, measure: fakeMeasure({ float: 1, 'static-qdq': 0.7, dynamic: 0.9 }) });
    expect(stat.latency.chosen).toBe('static-qdq');
    expect(stat.plan.mode).toBe('static');
    expect(stat.tuning?.candidates.map((c) => c.label)).toEqual(['float', 'static-qdq', 'dynamic']);
    // A replay of the recorded decision compares nothing again.
    const replay = await latencyStep({ ...input, plan: { ...dyn.plan, tuning: dyn.tuning }, rewritten: applyPlan(mlp, dyn.plan, undefined, {}), measure: fakeMeasure({ float: 1, dynamic: 0.5, 'static-qdq': 0.1 }) });
    expect(replay.latency.source).toBe('plan');
    expect(replay.latency.candidates.map((c) => c.label)).toEqual(['float', 'dynamic']);
  });
});
