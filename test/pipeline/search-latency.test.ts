import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InterleavedResult, LatencyCandidate, NodeCost } from '../../src/bench/index.js';
import { SearchReportSchema, readDocument, writeDocument } from '../../src/documents/index.js';
import type { Model } from '../../src/onnx/index.js';
import { search } from '../../src/pipeline/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const n = (name: string, opType: string, microsPerRun: number): NodeCost => ({ name, opType, microsPerRun });
/** fc2 profiles slower at 4 bits than float (13 vs 10 µs), faster at 8. */
const PROFILES: Record<string, NodeCost[]> = {
  float: [n('/Flatten', 'Flatten', 1), n('fused /fc1/Gemm', 'FusedGemm', 30), n('fused /fc2/Gemm', 'FusedGemm', 10), n('/fc3/Gemm', 'Gemm', 4)],
  '4': [n('/Flatten', 'Flatten', 1), n('G', 'MatMulNBits', 10), n('/Relu', 'Relu', 1), n('G1', 'MatMulNBits', 12), n('/Relu_1', 'Relu', 1), n('G2', 'MatMulNBits', 3)],
  '8': [n('/Flatten', 'Flatten', 1), n('G', 'MatMulNBits', 20), n('/Relu', 'Relu', 1), n('G1', 'MatMulNBits', 5), n('/Relu_1', 'Relu', 1), n('G2', 'MatMulNBits', 5)],
};

/** Deterministic "latency": 1 ms minus 0.1 per quantized-weight initializer group, no clock involved. */
function fakeMs(source: LatencyCandidate['source']): number {
  const m = source as Model;
  const q = m.proto.graph!.initializer.filter((t) => /nbits|_q$|quant/i.test(t.name ?? '')).length;
  return 1 - 0.05 * q;
}

function fakes() {
  let profiled = 0;
  const latencyProfile = async (candidates: readonly LatencyCandidate[]) => {
    profiled++;
    return candidates.map((c) => PROFILES[c.label]);
  };
  const latencyMeasure = async (candidates: readonly LatencyCandidate[]): Promise<InterleavedResult> => {
    const ms = candidates.map((c) => fakeMs(c.source));
    return { candidates: candidates.map((c, i) => ({ label: c.label, medianMs: ms[i], ratio: ms[i] / ms[0], ratioQ1: ms[i] / ms[0], ratioQ3: ms[i] / ms[0] })), rounds: 5, seconds: 0.1, threads: 1, loadAverage: 0 };
  };
  return { latencyProfile, latencyMeasure, profiled: () => profiled };
}

describe('search --objective latency (fmnist_mlp, injected profile and measurement)', () => {
  it('times every evaluation, keeps a passing configuration, caches the profile, draws both fronts', async () => {
    const dir = makeTempDir('qtool-latsearch-');
    const f = fakes();
    const common = {
      data: FMNIST.calibX,
      eval: FMNIST.valX,
      evalLabels: FMNIST.valY,
      evalSamples: 200,
      sensitivity: { probes: 2, minProbes: 2, samples: 16 },
      maxDrop: 2,
      latencyProfile: f.latencyProfile,
      latencyMeasure: f.latencyMeasure,
      force: true,
    };
    const r = await search(FMNIST.mlp, { ...common, objective: 'latency', reportOutput: path.join(dir, 'r.json'), htmlOutput: path.join(dir, 'r.html') });
    const report = readDocument(path.join(dir, 'r.json'), SearchReportSchema);
    expect(report.strategy).toBe('latency-greedy');
    expect(report.latency?.layers.map((l) => l.id)).toEqual(['/fc1/Gemm', '/fc2/Gemm', '/fc3/Gemm']);
    expect(report.latency?.layers[1].micros).toEqual({ float: 10, '4': 13, '8': 6 });
    for (const e of report.evaluations) expect(e.latencyMs).not.toBeNull();
    const chosen = report.evaluations[report.chosen];
    expect(chosen.passes).toBe(true);
    expect(r.plan.layers['/fc2/Gemm'].bits).not.toBe(4);
    expect(report.paretoLatency.length).toBeGreaterThan(0);
    expect(fs.readFileSync(path.join(dir, 'r.html'), 'utf8')).toMatch(/Latency vs accuracy drop/);
    expect(f.profiled()).toBe(1);
    // Same model, plans and machine: the profile comes from the latency cache; an unreachable budget exits 4 after writing.
    writeDocument(path.join(dir, 'sens.json'), r.sensitivity);
    await expect(search(FMNIST.mlp, { ...common, sensitivityReport: path.join(dir, 'sens.json'), maxLatencyMs: 0.01, reportOutput: path.join(dir, 'r2.json') })).rejects.toMatchObject({ code: 'E_BUDGET_NOT_MET', exitCode: 4 });
    const r2 = readDocument(path.join(dir, 'r2.json'), SearchReportSchema);
    expect(r2.latency?.profileSource).toBe('cache');
    expect(f.profiled()).toBe(1);
    expect(r2.budgetMet).toBe(false);
  }, 60_000);
});
