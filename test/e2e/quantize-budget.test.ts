import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { QuantizeSummarySchema } from '../../src/documents/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('qtool quantize --max-drop (e2e)', () => {
  it('fmnist_cnn, no --eval: holds out the last 25% of --data; cosine --max-drop 0.002 (percent) keeps the most sensitive convs float, exit 0', () => {
    const dir = makeTempDir('qtool-quantize-budget-e2e-');
    const r = spawnQtool(['quantize', FMNIST.cnn, '--data', FMNIST.calibX, '--max-drop', '0.002', '--metric', 'cosine', '-o', 'q.onnx', '--json', '--quiet'], { cwd: dir });
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.code).toBe(0);
    const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
    const b = s.budget!;
    console.log(`fmnist_cnn held-out cosine: ${JSON.stringify({ uniform: b.uniform, final: b.final, kept: b.kept.map((k) => k.id), evaluations: b.evaluations, eval: b.eval })}`);
    expect(b.eval).toEqual({ source: `${FMNIST.calibX} [384:512]`, samples: 128, isHeldOut: true });
    expect(s.calibration?.samples).toBe(256);
    expect(b.uniform.passes).toBe(false);
    expect(b.isSearched).toBe(true);
    expect(b.budgetMet).toBe(true);
    expect(b.final.drop).toBeLessThanOrEqual(0.002);
    expect(b.kept.length).toBeGreaterThan(0);
    expect(b.kept.length).toBeLessThan(8);
    expect(b.kept.length).toBe(s.byOpType.Conv.float + (s.byOpType.Gemm?.float ?? 0));
    for (const k of b.kept) expect(s.layers.find((l) => l.id === k.id)?.reason).toMatch(/^--max-drop: kept at float/);
    expect(fs.existsSync(path.join(dir, 'q.onnx'))).toBe(true);
  });

  it('an unreachable budget (--bits 4, cosine, --max-drop 0: even all-8-bit is not exact) writes the model and exits 4', () => {
    const dir = makeTempDir('qtool-quantize-budget-e2e-');
    const r = spawnQtool(['quantize', FMNIST.mlp, '--bits', '4', '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--max-drop', '0', '--metric', 'cosine', '-o', 'q.onnx', '--json'], { cwd: dir });
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/E_BUDGET_NOT_MET|expected a cosine drop within 0 percent/);
    const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
    expect(s.budget!.budgetMet).toBe(false);
    expect(s.budget!.final.drop).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dir, 'q.onnx'))).toBe(true);
    // Human output names the failure too.
    const h = spawnQtool(['quantize', FMNIST.mlp, '--bits', '4', '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--max-drop', '0', '--metric', 'cosine', '-o', 'q.onnx', '--force', '--quiet'], { cwd: dir });
    expect(h.code).toBe(4);
    expect(h.stdout).toMatch(/budget NOT met/);
  });

  it('bad combinations exit 2', () => {
    const dir = makeTempDir('qtool-quantize-budget-e2e-');
    const cases: string[][] = [
      ['--max-drop', '1', '--metric', 'sqnr'],
      ['--eval', FMNIST.valX],
      ['--max-drop', '-1'],
      ['--max-drop', '1', '--metric', 'top5'],
      ['--max-drop', '1', '--metric', 'accuracy'],
    ];
    for (const c of cases) {
      const r = spawnQtool(['quantize', FMNIST.cnn, '--data', FMNIST.calibX, '-o', 'q.onnx', ...c], { cwd: dir });
      expect(r.code, c.join(' ')).toBe(2);
      expect(hasStackTrace(r.stderr)).toBe(false);
    }
  });
});
