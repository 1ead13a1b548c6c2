import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../src/data/index.js';
import { PlanSchema, SearchReportSchema, readDocument } from '../../src/documents/index.js';
import { optimizedOpCounts, quantize, search } from '../../src/pipeline/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { topKHits } from '../../src/quant/index.js';
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
  dir = makeTempDir('qtool-search-static-');
  const x = readNpy(FMNIST.valX);
  const y = readNpy(FMNIST.valY);
  // First 1000 validation images drive the search; the last 1000 are held back for the check.
  writeNpy(path.join(dir, 'search_x.npy'), makeTensor('float32', [1000, 1, 28, 28], (x.data as Float32Array).slice(0, 1000 * 784)));
  writeNpy(path.join(dir, 'search_y.npy'), makeTensor('int64', [1000], (y.data as BigInt64Array).slice(0, 1000)));
  heldX = (x.data as Float32Array).slice(1000 * 784);
  heldY = (y.data as BigInt64Array).slice(1000);
});

describe('static-mode search on fmnist_cnn (calibrated once on fmnist_calib_x, evaluated by real rewrites)', () => {
  for (const c of [
    { bits: [8, 'float'] as const, maxDrop: 0.5 },
    { bits: [4, 8] as const, maxDrop: 1 },
    { bits: [4, 8, 'float'] as const, maxDrop: 0.5 },
  ]) {
    it(`--bits ${c.bits.join(',')} --max-drop ${c.maxDrop}`, async () => {
      const tag = c.bits.join('-');
      const out = (f: string) => path.join(dir, `cnn.${tag}.${f}`);
      const r = await search(FMNIST.cnn, {
        data: FMNIST.calibX,
        eval: path.join(dir, 'search_x.npy'),
        evalLabels: path.join(dir, 'search_y.npy'),
        mode: 'static',
        bits: [...c.bits] as (4 | 8 | 'float')[],
        maxDrop: c.maxDrop,
        planOutput: out('plan.json'),
        modelOutput: out('q.onnx'),
        reportOutput: out('report.json'),
      });
      const plan = readDocument(out('plan.json'), PlanSchema);
      const report = readDocument(out('report.json'), SearchReportSchema);
      const L = report.order.length;
      const floatAcc = await accuracy(FMNIST.cnn);
      const qAcc = await accuracy(out('q.onnx'));
      const chosen = report.evaluations[report.chosen];
      const ops = await optimizedOpCounts(loadModel(out('q.onnx')), out('q.onnx'));
      const fileBytes = fs.statSync(out('q.onnx')).size;
      console.log(
        `fmnist_cnn static --bits ${c.bits.join(',')}: L=${L}, ${report.evaluationCount} evaluations (bound ${(2 * Math.log2(L) + 4).toFixed(2)}), chosen ${JSON.stringify(chosen.counts)} ` +
          `search split ${chosen.value.toFixed(4)} (float ${report.reference.value.toFixed(4)}); held-back float ${floatAcc.toFixed(4)} → ${qAcc.toFixed(4)} (drop ${(100 * (floatAcc - qAcc)).toFixed(2)} points); ` +
          `file ${fileBytes} B; ops ${JSON.stringify(ops)}; order ${report.order.map((o) => `${o.id}:${o.score.toFixed(3)}`).join(' ')}; evaluations ${report.evaluations.map((e) => `${e.label}=${e.value.toFixed(4)}`).join(', ')}; notes ${report.notes.join(' | ')}`,
      );
      expect(r.plan).toEqual(plan);
      expect(plan.mode).toBe('static');
      expect(r.evaluator).toBe('rewrite');
      expect(r.sensitivity.measuredPath).toBe('rewrite');
      expect(report.budgetMet).toBe(true);
      expect(report.evaluationCount).toBeLessThanOrEqual(2 * Math.log2(L) + 4);
      expect(chosen.measuredSizeBytes).toBe(fileBytes);
      expect(r.written!.optimizedOps).toEqual(ops);
      if (c.bits.length === 3) {
        // Three levels: float → 8, then 8 → 4, under the same default cap (see searchPlan).
        expect(report.steps.map((s) => `${s.from}→${s.to}`)).toEqual(['float→8', '8→4']);
        expect(100 * (floatAcc - qAcc)).toBeLessThanOrEqual(1);
      } else if (c.bits.includes('float')) {
        expect(100 * (floatAcc - qAcc)).toBeLessThanOrEqual(0.5);
        expect(ops.QLinearConv ?? 0).toBeGreaterThan(0);
      } else {
        expect(100 * (floatAcc - qAcc)).toBeLessThanOrEqual(1);
        const int8 = await quantize(FMNIST.cnn, { data: FMNIST.calibX, mode: 'static', bits: 8, output: out('int8.onnx'), fidelitySamples: 0 });
        console.log(`uniform static INT8: ${int8.summary.output.sizeBytes} B, held-back ${(await accuracy(out('int8.onnx'))).toFixed(4)}`);
        expect(fileBytes).toBeLessThan(int8.summary.output.sizeBytes);
      }
    });
  }
});
