/** A batch job gates like `qtool quantize`: a result that quantizes nothing fails (exit 4 code) unless the recipe allows it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../../src/pipeline/index.js';
import { EXIT_CODES } from '../../src/errors.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-batch-unchanged-');
  // Dynamic INT8 of a conv-only net quantizes no weights (convolutions need static mode): E_UNCHANGED.
  const recipe = { mode: 'dynamic', fidelitySamples: 0, bench: false };
  fs.writeFileSync(
    path.join(dir, 'jobs.json'),
    JSON.stringify({
      jobs: [
        { id: 'noop', model: FMNIST.cnn, output: 'out/noop.onnx', recipe },
        { id: 'allowed', model: FMNIST.cnn, output: 'out/allowed.onnx', recipe: { ...recipe, allowUnchanged: true } },
        { id: 'mlp', model: FMNIST.mlp, output: 'out/mlp.onnx', recipe },
      ],
    }),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('batch applies the quantize no-op gate', () => {
  it('the job that quantizes nothing fails with E_UNCHANGED (output kept for inspection); allowUnchanged and a real job pass', async () => {
    const s = await runBatch(path.join(dir, 'jobs.json'), {});
    const byId = Object.fromEntries(s.jobs.map((j) => [j.id, j]));
    expect(byId.noop.status).toBe('failed');
    expect(byId.noop.error?.code).toBe('E_UNCHANGED');
    expect(byId.noop.error?.exitCode).toBe(EXIT_CODES.gate);
    expect(byId.noop.error?.message).toMatch(/static/);
    expect(fs.existsSync(path.join(dir, 'out/noop.onnx'))).toBe(true);
    expect(byId.allowed.status).toBe('ok');
    expect(byId.mlp.status).toBe('ok');
    expect(s.counts).toMatchObject({ ok: 2, failed: 1 });
    // A failed job is redone next time (no record of it as finished).
    const again = await runBatch(path.join(dir, 'jobs.json'), {});
    expect(again.jobs.find((j) => j.id === 'noop')!.status).toBe('failed');
    expect(again.jobs.find((j) => j.id === 'mlp')!.status).toBe('skipped');
  });
});
