import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { QuantizeSummarySchema } from '../../src/documents/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-e2e-quantize-');
  fs.copyFileSync(FMNIST.mlp, path.join(dir, 'mlp.onnx'));
});

test('qtool quantize writes model.int4.onnx next to the input and prints one JSON summary', () => {
  const r = spawnQtool(['quantize', 'mlp.onnx', '--bits', '4', '--json'], { cwd: dir });
  expect(r.code).toBe(0);
  const s = QuantizeSummarySchema.parse(JSON.parse(r.stdout));
  expect(s.output.file).toBe('mlp.int4.onnx');
  expect(fs.existsSync(path.join(dir, 'mlp.int4.onnx'))).toBe(true);
  expect(s.runtime.optimizedOps.MatMulNBits).toBe(3);
});

test('an existing output is not overwritten without --force (exit 2, one line, no stack)', () => {
  spawnQtool(['quantize', 'mlp.onnx', '--quiet'], { cwd: dir });
  const before = fs.readFileSync(path.join(dir, 'mlp.int8.onnx'));
  const r = spawnQtool(['quantize', 'mlp.onnx'], { cwd: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/E_OUTPUT_EXISTS/);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(fs.readFileSync(path.join(dir, 'mlp.int8.onnx')).equals(before)).toBe(true);
  expect(spawnQtool(['quantize', 'mlp.onnx', '--force', '--quiet'], { cwd: dir }).code).toBe(0);
});

test('bad flags and inputs map to exit codes', () => {
  expect(spawnQtool(['quantize', 'mlp.onnx', '--bits', '3', '-o', 'x.onnx'], { cwd: dir }).code).toBe(2);
  expect(spawnQtool(['quantize', 'mlp.onnx', '--mode', 'static', '-o', 'x.onnx'], { cwd: dir }).code).toBe(2);
  const missing = spawnQtool(['quantize', 'nope.onnx'], { cwd: dir });
  expect(missing.code).toBe(3);
  expect(hasStackTrace(missing.stderr)).toBe(false);
});
