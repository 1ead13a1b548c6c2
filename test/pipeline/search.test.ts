import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../src/data/index.js';
import { PlanSchema, SearchReportSchema, readDocument } from '../../src/documents/index.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { makeEvaluator, search } from '../../src/pipeline/index.js';
import { topKHits } from '../../src/quant/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, toFloat32 } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
let heldX: Float32Array;
let heldY: BigInt64Array;

async function accuracy(modelFile: string): Promise<number> {
  const s = await Session.open(modelFile);
  try {
    const out = await s.run({ input: makeTensor('float32', [1000, 1, 28, 28], heldX) });
    return topKHits(toFloat32(out.logits), heldY, 10, 1) / 1000;
  } finally {
    await s.release();
  }
}

beforeAll(() => {
  dir = makeTempDir('qtool-search-');
  const x = readNpy(FMNIST.valX);
  const y = readNpy(FMNIST.valY);
  // First 1000 validation images drive the search; the last 1000 are held back for the check.
  writeNpy(path.join(dir, 'search_x.npy'), makeTensor('float32', [1000, 1, 28, 28], (x.data as Float32Array).slice(0, 1000 * 784)));
  writeNpy(path.join(dir, 'search_y.npy'), makeTensor('int64', [1000], (y.data as BigInt64Array).slice(0, 1000)));
  heldX = (x.data as Float32Array).slice(1000 * 784);
  heldY = (y.data as BigInt64Array).slice(1000);
});

describe('search on fmnist with bits 4,8 and --max-drop 1', () => {
  for (const [name, file] of [
    ['fmnist_cnn', FMNIST.cnn],
    ['fmnist_mlp', FMNIST.mlp],
  ] as const) {
    it(`${name}: held-back drop <= 1 point, smaller than uniform INT8, <= 2 log2 L + 4 evaluations`, async () => {
      const out = (f: string) => path.join(dir, `${name}.${f}`);
      const r = await search(file, {
        data: FMNIST.calibX,
        eval: path.join(dir, 'search_x.npy'),
        evalLabels: path.join(dir, 'search_y.npy'),
        bits: [4, 8],
        maxDrop: 1,
        planOutput: out('plan.json'),
        modelOutput: out('q.onnx'),
        reportOutput: out('report.json'),
        htmlOutput: out('report.html'),
      });
      const plan = readDocument(out('plan.json'), PlanSchema);
      const report = readDocument(out('report.json'), SearchReportSchema);
      const L = report.order.length;
      const floatAcc = await accuracy(file);
      const qAcc = await accuracy(out('q.onnx'));
      // The plan as the search evaluated it (fake-quantized weights), on the held-back split.
      const ev = await makeEvaluator(loadModel(file), { batches: [{ input: makeTensor('float32', [1000, 1, 28, 28], heldX) }], labels: heldY, samples: 1000 }, { metric: 'accuracy', path: 'weights' });
      const fqAcc = (await ev.evaluate(plan)).value;
      await ev.close();
      const int8File = out('int8.onnx');
      saveModel(applyPlan(loadModel(file), uniformPlan({ bits: 8, mode: 'weight-only' }), undefined).model, int8File);
      const chosen = report.evaluations[report.chosen];
      console.log(
        `${name}: L=${L}, ${report.evaluationCount} evaluations (bound ${(2 * Math.log2(L) + 4).toFixed(2)}), chosen ${JSON.stringify(chosen.counts)}; ` +
          `search split ${chosen.value.toFixed(4)} (float ${report.reference.value.toFixed(4)}); held-back float ${floatAcc.toFixed(4)} rewritten model ${qAcc.toFixed(4)} (drop ${(100 * (floatAcc - qAcc)).toFixed(2)} points), plan with fake-quantized weights ${fqAcc.toFixed(4)} (drop ${(100 * (floatAcc - fqAcc)).toFixed(2)}); ` +
          `size ${chosen.sizeBytes} B vs uniform INT8 ${report.uniformSizes['8']} B; files ${fs.statSync(out('q.onnx')).size} B vs INT8 ${fs.statSync(int8File).size} B`,
      );
      expect(r.plan).toEqual(plan);
      expect(report.budgetMet).toBe(true);
      expect(report.evaluationCount).toBeLessThanOrEqual(2 * Math.log2(L) + 4);
      expect(100 * (floatAcc - qAcc)).toBeLessThanOrEqual(1);
      expect(100 * (floatAcc - fqAcc)).toBeLessThanOrEqual(1);
      expect(chosen.sizeBytes).toBeLessThan(report.uniformSizes['8']);
      expect(fs.statSync(out('q.onnx')).size).toBeLessThan(fs.statSync(int8File).size);
      const html = fs.readFileSync(out('report.html'), 'utf8');
      expect(html).toContain('<svg');
      expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    });
  }
});
