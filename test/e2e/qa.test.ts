import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

// Rough edges found by using qtool as a user would: each case pins a fix.
let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-qa-');
});

function expectOneLineError(r: { code: number; stdout: string; stderr: string }, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('qtool as a demanding user', () => {
  it('a bad value of a union-of-literals option names the allowed values', () => {
    const out = path.join(dir, 'bits.onnx');
    expectOneLineError(spawnQtool(['quantize', FMNIST.cnn, '--bits', '5', '-o', out]), 2, /bits: Invalid option: expected one of 4\|8/);
    expectOneLineError(spawnQtool(['quantize', FMNIST.cnn, '--bits', '4', '--block-size', '7', '-o', out]), 2, /blockSize: Invalid option: expected one of 16\|32\|64\|128/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
