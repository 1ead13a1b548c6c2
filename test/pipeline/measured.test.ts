import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../src/data/index.js';
import { GateError } from '../../src/errors.js';
import { quantize, quantizeGateError } from '../../src/pipeline/index.js';
import { FidelityAccumulator } from '../../src/quant/index.js';
import { Session } from '../../src/runtime/index.js';
import { toFloat32, type Tensor } from '../../src/tensor/index.js';
import { FIXTURES } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const MODELS = path.join(FIXTURES, 'models', 'synthetic');
const DATA = path.join(FIXTURES, 'data', 'synthetic');
let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-measured-');
});

/** Output fidelity of two model files on the same feeds (independent of qtool's own check). */
async function fidelity(a: string, b: string, feeds: Record<string, Tensor>) {
  const fa = await Session.open(a);
  const fb = await Session.open(b);
  try {
    const name = fa.outputNames[0];
    const acc = new FidelityAccumulator();
    acc.update(toFloat32((await fa.run(feeds))[name]), toFloat32((await fb.run(feeds))[name]));
    return acc.result();
  } finally {
    await fa.release();
    await fb.release();
  }
}

describe('decide by measurement (issue 11)', () => {
  it('audio front end, static INT8: int16-scale PCM quantizes, every conv is QLinearConv, the power spectrum stays float by its measured SQNR, output SQNR ≥ 30 dB', async () => {
    const model = path.join(MODELS, 'audio_frontend.onnx');
    const data = path.join(DATA, 'audio_frontend_pcm.npy');
    const out = path.join(dir, 'af.int8.onnx');
    const r = await quantize(model, { bits: 8, data, output: out, fidelitySamples: 0 });
    const byId = new Map(r.summary.layers.map((l) => [l.id, l]));
    for (const id of ['conv0', 'conv1', 'conv2']) expect(byId.get(id)?.scheme, id).toBe('static-qdq');
    expect(r.summary.runtime.optimizedOps.QLinearConv).toBe(3);
    // The mel MatMul reads the power spectrum, which reaches a Log: its log-domain SQNR is far below the floor.
    const mel = byId.get('mel')!;
    expect(mel.bits).toBe('float');
    expect(mel.reason).toMatch(/power_out.*expected SQNR (-?[0-9.]+) dB.*log domain.*below the 20 dB floor/);
    // The int16-scale input is not a "mask fill": the DFT MatMuls quantize it.
    expect(byId.get('dft_re')?.bits).toBe(8);
    const f = await fidelity(model, out, { pcm: readNpy(data) });
    console.log(`audio front end static INT8: output SQNR ${f.sqnrDb.toFixed(1)} dB, cosine ${f.cosine.toFixed(5)}, ${r.summary.sizeRatio.toFixed(3)}x`);
    expect(f.sqnrDb).toBeGreaterThanOrEqual(30);
  });

  it('one harmful layer: --max-drop keeps exactly that layer float (measured single-layer loss orders the search)', async () => {
    const model = path.join(MODELS, 'one_harmful.onnx');
    const data = path.join(DATA, 'one_harmful_x.npy');
    const out = path.join(dir, 'harm.int8.onnx');
    const r = await quantize(model, { bits: 8, data, output: out, metric: 'cosine', maxDrop: 1, fidelitySamples: 0 });
    const b = r.summary.budget!;
    expect(b.uniform.passes).toBe(false);
    expect(b.budgetMet).toBe(true);
    expect(b.kept.map((k) => k.id)).toEqual(['fc2']);
    expect(r.summary.layers.filter((l) => l.bits === 'float').map((l) => l.id)).toEqual(['fc2']);
    expect(b.final.value).toBeGreaterThan(0.99);
    console.log(`one harmful layer --max-drop 1 cosine: uniform ${b.uniform.value.toFixed(4)} → ${b.final.value.toFixed(4)}, kept ${b.kept.map((k) => k.id).join(',')}, ${b.evaluations} evaluations`);
  });

  it('a budget only met by keeping every layer float is not met: GateError (exit 4) saying it quantizes nothing', async () => {
    const model = path.join(MODELS, 'one_harmful.onnx');
    const data = path.join(DATA, 'one_harmful_x.npy');
    const r = await quantize(model, { bits: 8, data, output: path.join(dir, 'harm0.onnx'), metric: 'cosine', maxDrop: 0, fidelitySamples: 0 });
    expect(r.summary.budget!.budgetMet).toBe(false);
    const e = quantizeGateError(r.summary);
    expect(e).toBeInstanceOf(GateError);
    expect(e!.message).toMatch(/quantizes nothing/);
  });
});
