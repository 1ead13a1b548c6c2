import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/data/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { optimizedOpCounts, search } from '../../src/pipeline/index.js';
import { FidelityAccumulator } from '../../src/quant/index.js';
import { Session } from '../../src/runtime/index.js';
import { toFloat32 } from '../../src/tensor/index.js';
import { REAL_MODELS } from '../helpers/paths.js';
import { textImages, textImagesOfSeeds } from '../helpers/text-images.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;

beforeAll(() => {
  dir = makeTempDir('qtool-search-paddle-');
  // 8 calibration images (seed 1), 4 distinct evaluation images (seeds 2–5), 1×3×64×64 each.
  writeNpy(path.join(dir, 'calib.npy'), textImages(8, 64, 64, 1, true, 10));
  writeNpy(path.join(dir, 'eval.npy'), textImagesOfSeeds([2, 3, 4, 5], 64, 64, true, 10));
});

describe('static-mode search on PaddleOCR v4 det (text-like images)', () => {
  it('--bits 8,float --metric cosine --max-drop 1: keeps the most sensitive convs float', async () => {
    const out = (f: string) => path.join(dir, `det.${f}`);
    const t0 = performance.now();
    const r = await search(REAL_MODELS.paddleDet, {
      data: path.join(dir, 'calib.npy'),
      eval: path.join(dir, 'eval.npy'),
      mode: 'static',
      bits: [8, 'float'],
      metric: 'cosine',
      maxDrop: 1,
      sensitivity: { samples: 8 },
      modelOutput: out('q.onnx'),
    }).catch((e) => e);
    const ms = performance.now() - t0;
    expect(r).not.toBeInstanceOf(Error);
    const report = r.report;
    const L = report.order.length;
    const chosen = report.evaluations[report.chosen];
    const allInt8 = report.evaluations.find((e: { counts: Record<string, number> }) => e.counts['8'] === L);
    // Independent check of the written model on the evaluation images.
    const f = await Session.open(REAL_MODELS.paddleDet);
    const q = await Session.open(out('q.onnx'));
    const feeds = { x: textImagesOfSeeds([2, 3, 4, 5], 64, 64, true, 10) };
    const acc = new FidelityAccumulator();
    const name = f.outputNames[0];
    acc.update(toFloat32((await f.run(feeds))[name]), toFloat32((await q.run(feeds))[name]));
    await f.release();
    await q.release();
    const cos = acc.result().cosine;
    const ops = await optimizedOpCounts(loadModel(out('q.onnx')), out('q.onnx'));
    console.log(
      `paddle det static search: L=${L}, ${report.evaluationCount} evaluations (bound ${(2 * Math.log2(L) + 4).toFixed(2)}), chosen ${JSON.stringify(chosen.counts)}, cosine ${chosen.value.toFixed(4)} (written model ${cos.toFixed(4)}; all int8 ${allInt8?.value.toFixed(4)}), ` +
        `QLinearConv ${ops.QLinearConv}, float convs ${report.order.filter((o: { id: string }) => r.plan.layers[o.id].bits === 'float').map((o: { id: string }) => o.id).join(' ')}, ${(ms / 1000).toFixed(1)} s (calibration ${(r.stats.calibrationMs / 1000).toFixed(1)} s, sensitivity ${(r.stats.sensitivityMs / 1000).toFixed(1)} s, evaluations ${(r.stats.evaluationMs / 1000).toFixed(1)} s); ` +
        `evaluations ${report.evaluations.map((e: { label: string; value: number }) => `${e.label}=${e.value.toFixed(4)}`).join(', ')}`,
    );
    expect(report.evaluationCount).toBeLessThanOrEqual(2 * Math.log2(L) + 4);
    expect(cos).toBeCloseTo(chosen.value, 5);
    expect(report.budgetMet).toBe(true);
    expect(cos).toBeGreaterThanOrEqual(0.99);
    expect(ops.QLinearConv).toBeGreaterThan(30);
  });
});
