import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy, writeNpz } from '../../src/data/index.js';
import { CalibrationSummarySchema, CalibrationTableSchema } from '../../src/documents/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('qtool calibrate (spawned CLI)', () => {
  let dir: string;
  let model: string;
  beforeAll(() => {
    dir = makeTempDir('qtool-calib-e2e-');
    model = path.join(dir, 'cnn.onnx');
    fs.copyFileSync(FMNIST.cnn, model);
  });

  it('writes <model>.calib.json next to the model, refuses to overwrite, --json prints the summary', () => {
    const r = spawnQtool(['calibrate', model, '--data', FMNIST.calibX, '--method', 'percentile', '--percentile', '99.99', '--samples', '64', '--batch-size', '32', '--all-tensors']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/cnn\.calib\.json: percentile ranges of 20 tensors from 64 samples/);
    const table = CalibrationTableSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'cnn.calib.json'), 'utf8')));
    expect(table.settings).toMatchObject({ percentile: 99.99, tensors: 'all' });
    expect(table.samples).toBe(64);

    const again = spawnQtool(['calibrate', model, '--data', FMNIST.calibX]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^qtool: error E_OUTPUT_EXISTS: .*cnn\.calib\.json: output exists: expected a new file \(pass --force to overwrite\)\n$/);

    const out = path.join(dir, 'mm.json');
    const j = spawnQtool(['calibrate', model, '--data', FMNIST.calibX, '--samples', '16', '-o', out, '--json']);
    expect(j.code).toBe(0);
    const summary = CalibrationSummarySchema.parse(JSON.parse(j.stdout));
    // By default only the tensors a static rewrite can read (every one but the logits here).
    expect(summary).toMatchObject({ output: out, method: 'minmax', samples: 16, tensorCount: 19, skipped: 0 });
    // Deterministic: same inputs, same bytes.
    const first = fs.readFileSync(out);
    expect(spawnQtool(['calibrate', model, '--data', FMNIST.calibX, '--samples', '16', '-o', out, '--force', '--quiet']).code).toBe(0);
    expect(fs.readFileSync(out)).toEqual(first);
  });

  it('random data warns loudly on stderr', () => {
    const r = spawnQtool(['calibrate', model, '--data', 'random', '--samples', '4', '-o', path.join(dir, 'rnd.json')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: calibrating on random data: ranges from random inputs are not representative/);
  });

  it('--skip-nonfinite skips NaN samples and says how many', () => {
    const f = path.join(dir, 'nan.npy');
    const x = new Float32Array(6 * 784).fill(0.5);
    x[784 * 2 + 3] = NaN;
    writeNpy(f, makeTensor('float32', [6, 1, 28, 28], x));
    const bad = spawnQtool(['calibrate', model, '--data', f, '-o', path.join(dir, 'nan.json')]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/nan\.npy: input "input": sample 2 holds NaN or Inf values/);
    const r = spawnQtool(['calibrate', model, '--data', f, '--skip-nonfinite', '-o', path.join(dir, 'nan.json'), '--json']);
    expect(r.code).toBe(0);
    const s = CalibrationSummarySchema.parse(JSON.parse(r.stdout));
    expect([s.samples, s.skipped]).toEqual([5, 1]);
    expect(r.stderr).toMatch(/skipped 1 samples holding NaN or Inf values/);
  });

  describe('bad data exits 3 with one line naming the file, no stack trace', () => {
    const cases: [string, (d: string) => string, RegExp][] = [
      ['shape', (d) => npy(d, 'shape.npy', makeTensor('float32', [2, 1, 28, 27])), /E_DATA_SHAPE: .*shape\.npy: input "input": expected shape \[N, 1, 28, 28\], got \[2, 1, 28, 27\]/],
      ['dtype', (d) => npy(d, 'u8.npy', makeTensor('uint8', [2, 1, 28, 28])), /E_DATA_DTYPE: .*u8\.npy: input "input": expected float32 data, got uint8/],
      ['missing input', (d) => npz(d, 'missing.npz', {}), /E_DATA_MISSING: .*missing\.npz: input "input" is missing/],
      ['extra input', (d) => npz(d, 'extra.npz', { input: makeTensor('float32', [1, 1, 28, 28]), labels: makeTensor('int64', [1]) }), /E_DATA_EXTRA: .*extra\.npz: array "labels" is not a model input/],
      ['zero samples', (d) => npy(d, 'empty.npy', makeTensor('float32', [0, 1, 28, 28])), /E_DATA_EMPTY: .*empty\.npy: expected at least one sample, got 0/],
      ['non-finite', (d) => npy(d, 'inf.npy', makeTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(Infinity))), /E_DATA_NONFINITE: .*inf\.npy: input "input": sample 0 holds NaN or Inf values/],
      ['truncated npy', (d) => cut(d, 'cut.npy'), /E_DATA_FORMAT: .*cut\.npy: truncated \.npy file/],
      ['not data', (d) => text(d, 'notes.txt', 'hello'), /E_DATA_FORMAT: .*notes\.txt: unknown data format/],
      ['missing file', (d) => path.join(d, 'absent.npy'), /E_READ: .*absent\.npy: no such file/],
      ['bad jsonl record', (d) => text(d, 'bad.jsonl', '{"input": [1, 2, 3]}\n'), /E_DATA_SHAPE: .*bad\.jsonl:1: input "input": expected shape/],
    ];
    function npy(d: string, name: string, t: ReturnType<typeof makeTensor>): string {
      writeNpy(path.join(d, name), t);
      return path.join(d, name);
    }
    function npz(d: string, name: string, a: Record<string, ReturnType<typeof makeTensor>>): string {
      writeNpz(path.join(d, name), a);
      return path.join(d, name);
    }
    function text(d: string, name: string, s: string): string {
      fs.writeFileSync(path.join(d, name), s);
      return path.join(d, name);
    }
    function cut(d: string, name: string): string {
      const bytes = fs.readFileSync(FMNIST.calibX).subarray(0, 5000);
      fs.writeFileSync(path.join(d, name), bytes);
      return path.join(d, name);
    }
    for (const [what, make, re] of cases) {
      it(what, () => {
        const data = make(dir);
        const r = spawnQtool(['calibrate', model, '--data', data, '-o', path.join(dir, 'never.json')]);
        expect(r.code).toBe(3);
        expect(r.stderr).toMatch(re);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(hasStackTrace(r.stderr)).toBe(false);
        expect(r.stdout).toBe('');
        expect(fs.existsSync(path.join(dir, 'never.json'))).toBe(false);
      });
    }
  });

  it('bad flags exit 2', () => {
    for (const args of [['--percentile', '20'], ['--batch-size', 'x'], ['--method', 'median'], ['--dim', 'seq']]) {
      const r = spawnQtool(['calibrate', model, '--data', 'random', '-o', path.join(dir, 'never.json'), ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/E_FLAG/);
      expect(hasStackTrace(r.stderr)).toBe(false);
    }
  });
});
