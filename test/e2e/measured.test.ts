import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../src/data/index.js';
import { QuantizeSummarySchema } from '../../src/documents/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng, toFloat32 } from '../../src/tensor/index.js';
import { FIXTURES } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

const MODELS = path.join(FIXTURES, 'models', 'synthetic');
const DATA = path.join(FIXTURES, 'data', 'synthetic');
let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-e2e-measured-');
});

describe('no silent no-op (issue 11)', () => {
  it('a conv-only net without --data (dynamic) writes nothing quantized: warning naming why and what to run, exit 4; --allow-unchanged accepts it', () => {
    const model = path.join(MODELS, 'embedding_cnn.onnx');
    const r = spawnQtool(['quantize', model, '-o', path.join(dir, 'e8.onnx'), '--json']);
    expect(r.code).toBe(4);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
    expect(s.warnings[0]).toMatch(/nothing was quantized.*convolutions need static mode: pass --data/);
    expect(r.stderr).toMatch(/E_UNCHANGED/);
    const ok = spawnQtool(['quantize', model, '-o', path.join(dir, 'e8b.onnx'), '--allow-unchanged', '--quiet']);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/warning: nothing was quantized/);
  });

  it('--bits 4 on a conv-only net: exit 4, the warning points at static INT8', () => {
    const r = spawnQtool(['quantize', path.join(MODELS, 'embedding_cnn.onnx'), '--bits', '4', '-o', path.join(dir, 'e4.onnx'), '--json']);
    expect(r.code).toBe(4);
    const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
    expect(s.warnings[0]).toMatch(/nothing was quantized.*--bits 8 with --data/);
  });

  it('static INT8 of the same net with data quantizes every conv and exits 0 without an unchanged warning', () => {
    const r = spawnQtool(['quantize', path.join(MODELS, 'embedding_cnn.onnx'), '--data', path.join(DATA, 'embedding_cnn_x.npy'), '-o', path.join(dir, 'es.onnx'), '--json']);
    expect(r.code).toBe(0);
    const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
    expect(s.layers.every((l) => l.scheme === 'static-qdq')).toBe(true);
    expect(s.warnings.filter((w) => /quantized/.test(w))).toEqual([]);
  });
});

describe('calibration coverage and random data', () => {
  it('a Sigmoid head calibrated without one positive example warns; with positives it does not', async () => {
    const model = path.join(MODELS, 'sigmoid_head.onnx');
    // Candidate inputs: the stored set (never fires) and 3× larger draws, split by what the float model says.
    const f = await Session.open(model);
    const x = readNpy(path.join(DATA, 'sigmoid_head_x.npy'));
    const big = makeTensor('float32', [256, 32], new Rng(7).fillNormal(new Float32Array(256 * 32), 3));
    const p = toFloat32((await f.run({ x: big })).prob);
    await f.release();
    const pos = [...p].map((v, i) => [v, i] as const).filter(([v]) => v > 0.5).map(([, i]) => i);
    expect(pos.length).toBeGreaterThan(2);
    const mixed = new Float32Array(40 * 32);
    mixed.set((x.data as Float32Array).subarray(0, 32 * 32));
    pos.slice(0, 8).forEach((i, k) => mixed.set(big.data.subarray(i * 32, i * 32 + 32), (32 + k) * 32));
    writeNpy(path.join(dir, 'mixed.npy'), makeTensor('float32', [32 + Math.min(8, pos.length), 32], mixed.subarray(0, (32 + Math.min(8, pos.length)) * 32)));

    const neg = spawnQtool(['quantize', model, '--data', path.join(DATA, 'sigmoid_head_x.npy'), '-o', path.join(dir, 'h1.onnx'), '--json']);
    expect(neg.code).toBe(0);
    const sn = QuantizeSummarySchema.parse(JSON.parse(neg.stdout));
    expect(sn.warnings.some((w) => /Sigmoid output "prob" never passes 0.5/.test(w))).toBe(true);
    const mix = spawnQtool(['quantize', model, '--data', path.join(dir, 'mixed.npy'), '-o', path.join(dir, 'h2.onnx'), '--json']);
    const sm = QuantizeSummarySchema.parse(JSON.parse(mix.stdout));
    expect(sm.warnings.some((w) => /coverage/.test(w))).toBe(false);
  });

  it('--data random warns before the work starts (quantize lists it in --json warnings; calibrate says it too)', () => {
    const q = spawnQtool(['quantize', path.join(MODELS, 'one_harmful.onnx'), '--data', 'random', '-o', path.join(dir, 'r.onnx'), '--json']);
    const s = QuantizeSummarySchema.parse(JSON.parse(q.stdout));
    expect(s.warnings.some((w) => /--data random/.test(w))).toBe(true);
    expect(q.stderr.split('\n')[0]).toMatch(/warning: --data random/);
    const c = spawnQtool(['calibrate', path.join(MODELS, 'one_harmful.onnx'), '--data', 'random', '-o', path.join(dir, 'r.calib.json')]);
    expect(c.code).toBe(0);
    expect(c.stderr.split('\n')[0]).toMatch(/warning: --data random/);
  });

  it('fidelity below the floor is a loud warning naming the layer measured worst alone and suggesting --max-drop', () => {
    const r = spawnQtool(['quantize', path.join(MODELS, 'one_harmful.onnx'), '--data', path.join(DATA, 'one_harmful_x.npy'), '-o', path.join(dir, 'h.onnx'), '--json']);
    const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
    const w = s.warnings.find((x) => /fidelity below the floor/.test(x));
    expect(w).toMatch(/worst: fc2 \(/);
    expect(w).toMatch(/--max-drop/);
    expect(s.fidelity!.worstLayers![0].id).toBe('fc2');
    expect(s.fidelity!.worstLayers![0].sqnrDb).toBeLessThan(10);
    expect(s.fidelity!.worstLayers![1].sqnrDb).toBeGreaterThan(30);
  });
});
