import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

// The README's in-memory data example: the app's own preprocessing and ort.Tensor feeds, through the public API.
describe('examples/feeds.mjs', () => {
  it('calibrates, quantizes and evaluates fmnist_cnn from feeds built by the app', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'examples/feeds.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^calibrated \d+ tensors on 512 samples$/m);
    const size = Number(/size ([\d.]+)x of fp32/.exec(r.stdout)?.[1]);
    expect(size).toBeGreaterThan(0.2);
    expect(size).toBeLessThanOrEqual(0.27);
    const [, top1, float] = /top-1 ([\d.]+) \(float ([\d.]+)\), gate passed/.exec(r.stdout) ?? [];
    // The recovered 8-bit pixels reproduce the shipped normalized set: the float accuracy is the shipped one.
    expect(Number(float)).toBeCloseTo(0.9255, 3);
    expect(Number(float) - Number(top1)).toBeLessThanOrEqual(0.01);
  });
});
