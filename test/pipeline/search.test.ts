import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../src/data/index.js';
import { PlanSchema, SearchReportSchema, readDocument } from '../../src/documents/index.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { makeEvaluator, search } from '../../src/pipeline/index.js';
import { topKHits } from '../../src/quant/index.js';
import { applyPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, toFloat32 } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
let heldX: Float32Array;
let heldY: BigInt64Array;

let searchX: Float32Array;
let searchY: BigInt64Array;

async function accuracy(modelFile: string, x = heldX, y = heldY): Promise<number> {
  const s = await Session.open(modelFile);
  try {
    const out = await s.run({ input: makeTensor('float32', [1000, 1, 28, 28], x) });
    return topKHits(toFloat32(out.logits), y, 10, 1) / 1000;
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
  searchX = (x.data as Float32Array).slice(0, 1000 * 784);
  searchY = (y.data as BigInt64Array).slice(0, 1000);
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
      // Uniform INT8 as a search plan states it (every layer listed at 8 bits, convolutions included).
      const int8File = out('int8.onnx');
      const int8Plan = { ...plan, layers: Object.fromEntries(Object.keys(plan.layers).map((id) => [id, { bits: 8 as const, granularity: 'channel' as const, symmetric: true }])) };
      saveModel(applyPlan(loadModel(file), int8Plan, undefined).model, int8File);
      const chosen = report.evaluations[report.chosen];
      const fileBytes = fs.statSync(out('q.onnx')).size;
      const qSearchAcc = await accuracy(out('q.onnx'), searchX, searchY);
      console.log(
        `${name}: L=${L}, ${report.evaluationCount} evaluations (bound ${(2 * Math.log2(L) + 4).toFixed(2)}), evaluator ${r.evaluator}, chosen ${JSON.stringify(chosen.counts)}; ` +
          `search split ${chosen.value.toFixed(4)} (float ${report.reference.value.toFixed(4)}; written model on it ${qSearchAcc.toFixed(4)}); held-back float ${floatAcc.toFixed(4)} rewritten model ${qAcc.toFixed(4)} (drop ${(100 * (floatAcc - qAcc)).toFixed(2)} points), plan with fake-quantized weights ${fqAcc.toFixed(4)} (drop ${(100 * (floatAcc - fqAcc)).toFixed(2)}); ` +
          `plan accounting ${chosen.sizeBytes} B (uniform INT8 ${report.uniformSizes['8']} B), written file ${fileBytes} B (${((100 * (fileBytes - chosen.sizeBytes)) / chosen.sizeBytes).toFixed(1)}% over), measured in evaluation ${chosen.measuredSizeBytes} B; INT8 file ${fs.statSync(int8File).size} B`,
      );
      expect(r.plan).toEqual(plan);
      // The written model is the model the search measured, and its size is the plan's accounting
      // plus the file's names and framing (under 10 %).
      expect(r.evaluator).toBe('rewrite');
      expect(r.written).toMatchObject({ file: out('q.onnx'), sizeBytes: fileBytes, plannedBytes: chosen.sizeBytes });
      expect(chosen.measuredSizeBytes).toBe(fileBytes);
      expect(fileBytes).toBeGreaterThanOrEqual(chosen.sizeBytes);
      expect((fileBytes - chosen.sizeBytes) / chosen.sizeBytes).toBeLessThan(0.1);
      expect(qSearchAcc).toBeCloseTo(chosen.value, 6);
      expect(Math.abs(100 * (qAcc - fqAcc))).toBeLessThanOrEqual(0.5);
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
