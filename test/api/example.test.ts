import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

// The README's library example is a real program: run it as a user would and check what it prints.
describe('examples/api.mjs', () => {
  it('quantizes, evaluates and benchmarks fmnist_cnn through the public API', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'examples/api.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^8 quantizable layers$/m);
    const size = Number(/size ([\d.]+)x of fp32/.exec(r.stdout)?.[1]);
    expect(size).toBeGreaterThan(0.2);
    expect(size).toBeLessThanOrEqual(0.27);
    const [, top1, float] = /top-1 ([\d.]+) \(float ([\d.]+)\), gate passed/.exec(r.stdout) ?? [];
    expect(Number(float)).toBeCloseTo(0.9255, 4);
    expect(Number(float) - Number(top1)).toBeLessThanOrEqual(0.005);
    expect(r.stdout.match(/b1 p50 [\d.]+ ms, b32 p50 [\d.]+ ms/g)).toHaveLength(2);
  });
});
