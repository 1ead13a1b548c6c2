import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, calibrationTensors } from '../../src/calibrate/index.js';
import { openDataset, writeNpy } from '../../src/data/index.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { applyPlan, rangesNeeded, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, toFloat32, type Tensor } from '../../src/tensor/index.js';
import { REAL_MODELS } from '../helpers/paths.js';
import { ctcDecode, TEXT_LINES, textLineBatch } from '../helpers/text-lines.js';
import { makeTempDir } from '../helpers/tmp.js';

/** Float vs quantized on rendered lines: full-string CTC decode agreement (separators included) and per-position argmax agreement. */
async function decodeAgreement(floatFile: string, quantFile: string, x: Tensor<'float32'>) {
  const [fa, fb] = [await Session.open(floatFile), await Session.open(quantFile)];
  const n = x.dims[0];
  const per = x.data.length / n;
  let strings = 0;
  let positions = 0;
  let total = 0;
  let extraEdgeSeparators = 0;
  const diffs: [string, string][] = [];
  try {
    for (let i = 0; i < n; i++) {
      const xi = makeTensor('float32', [1, ...x.dims.slice(1)], x.data.slice(i * per, (i + 1) * per));
      const ya = (await fa.run({ x: xi }))[fa.outputNames[0]];
      const yb = toFloat32((await fb.run({ x: xi }))[fb.outputNames[0]]);
      const a = toFloat32(ya);
      const [, steps, classes] = ya.dims;
      const sa = ctcDecode(a, 0, steps, classes);
      const sb = ctcDecode(yb, 0, steps, classes);
      if (sa === sb) strings++;
      else diffs.push([sa, sb]);
      extraEdgeSeparators += Number(sb.startsWith(' ') && !sa.startsWith(' ')) + Number(sb.endsWith(' ') && !sa.endsWith(' '));
      for (let t = 0; t < steps; t++) {
        let p = 0;
        let q = 0;
        for (let c = 1; c < classes; c++) {
          if (a[t * classes + c] > a[t * classes + p]) p = c;
          if (yb[t * classes + c] > yb[t * classes + q]) q = c;
        }
        positions += Number(p === q);
        total++;
      }
    }
  } finally {
    await fa.release();
    await fb.release();
  }
  return { strings: strings / n, positions: positions / total, extraEdgeSeparators, diffs };
}

describe('PaddleOCR v4 rec (CTC) on rendered text lines with word separators', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir('qtool-ctc-');
    writeNpy(path.join(dir, 'calib.npy'), textLineBatch(0, 12));
  });

  it('static INT8: full-string CTC agreement with separators and per-position argmax agreement, measured with and without conv folding', async () => {
    const model = loadModel(REAL_MODELS.paddleRec);
    const evalX = textLineBatch(12, 32);
    // The float model reads the rendered words (spaces at the line ends aside).
    const f = await Session.open(REAL_MODELS.paddleRec);
    let read = 0;
    for (let i = 0; i < 20; i++) {
      const xi = makeTensor('float32', [1, 3, 48, 320], evalX.data.slice(i * 3 * 48 * 320, (i + 1) * 3 * 48 * 320));
      const y = (await f.run({ x: xi }))[f.outputNames[0]];
      if (ctcDecode(toFloat32(y), 0, y.dims[1], y.dims[2]).trim() === TEXT_LINES.texts[12 + i]) read++;
    }
    await f.release();
    expect(read).toBeGreaterThanOrEqual(14);

    const plan = uniformPlan({ bits: 8, mode: 'static' });
    // One table for both rewrites: every tensor either reads (calibrationTensors keeps the model's order).
    const needed = new Set([...rangesNeeded(model, plan, { foldConvAffine: true }), ...rangesNeeded(model, plan, { foldConvAffine: false })]);
    const tensors = calibrationTensors(model).filter((t) => needed.has(t));
    const table = await calibrate(model, await openDataset(path.join(dir, 'calib.npy'), model), { tensors, method: 'minmax' });
    const results: Record<string, Awaited<ReturnType<typeof decodeAgreement>>> = {};
    for (const fold of [false, true]) {
      const r = applyPlan(model, plan, table, { foldConvAffine: fold });
      const file = path.join(dir, `rec.fold-${fold}.onnx`);
      saveModel(r.model, file);
      results[String(fold)] = await decodeAgreement(REAL_MODELS.paddleRec, file, evalX);
    }
    const [off, on] = [results.false, results.true];
    console.log(
      `rec static INT8 on ${20} rendered lines (float read ${read}/20): full-string agreement with separators ${off.strings.toFixed(3)} → ${on.strings.toFixed(3)} with conv folding; per-position argmax ${off.positions.toFixed(4)} → ${on.positions.toFixed(4)}; extra edge separators ${off.extraEdgeSeparators} → ${on.extraEdgeSeparators}; diffs ${JSON.stringify(on.diffs.slice(0, 4))}`,
    );
    // Measured, not yet fixed (issue 11 item 6): per-position argmax agreement stays above 0.9, but the
    // full string with separators does not (extra separators at line ends); folding is neutral here.
    for (const r of [off, on]) {
      expect(r.positions).toBeGreaterThan(0.9);
      expect(r.strings).toBeGreaterThan(0.25);
    }
    expect(Math.abs(on.positions - off.positions)).toBeLessThan(0.03);
  });
});
