import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/data/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST, MODELS } from '../helpers/paths.js';
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
  // One error line; a warning printed before the work started (--data random) is not part of it.
  expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('qtool: warning:'))).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('qtool as a demanding user', () => {
  it('a bad value of a union-of-literals option names the allowed values', () => {
    const out = path.join(dir, 'bits.onnx');
    expectOneLineError(spawnQtool(['quantize', FMNIST.cnn, '--bits', '5', '-o', out]), 2, /bits: Invalid option: expected one of 4\|8/);
    expectOneLineError(spawnQtool(['quantize', FMNIST.cnn, '--bits', '4', '--block-size', '7', '-o', out]), 2, /blockSize: Invalid option: expected one of 16\|32\|64\|128/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('eval refuses labels that are not one class id per output row, instead of scoring garbage', () => {
    const labels = (name: string, t: Parameters<typeof writeNpy>[1]): string => {
      const file = path.join(dir, name);
      writeNpy(file, t);
      return file;
    };
    const run = (file: string) => spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.calibX, '--samples', '64', '--labels', file]);
    // float labels (here: zeros) gave "top-1 9.85%"; labels [N, 3] gave a perplexity of a classifier; class 50 of 10 counted as hits
    expectOneLineError(run(labels('float.npy', makeTensor('float32', [64]))), 3, /E_LABELS: .*float\.npy: labels: expected an integer array \(class ids\), got float32/);
    expectOneLineError(run(labels('rank2.npy', makeTensor('int64', [64, 3]))), 3, /E_LABELS: .*rank2\.npy: labels: expected one label per row of the output/);
    expectOneLineError(run(labels('range.npy', makeTensor('int64', [64], new BigInt64Array(64).fill(50n)))), 3, /E_LABELS: .*range\.npy: labels: expected class ids in 0\.\.9 \(the output has 10 classes\), got 50/);
    expect(run(FMNIST.calibY).code).toBe(0);
  });

  it('quantize refuses an --exclude-node / --include-node name the model does not have', () => {
    const out = path.join(dir, 'select.onnx');
    // was exit 0: a typo quantized the layer meant to stay float, and --include-node quantized nothing
    expectOneLineError(spawnQtool(['quantize', FMNIST.cnn, '--exclude-node', '/stem/stem.0/Conv,/nosuch', '-o', out]), 2, /E_FLAG: --exclude-node \/nosuch: expected a node name or layer id of the model/);
    expectOneLineError(spawnQtool(['quantize', FMNIST.cnn, '--include-node', 'Conv#0', '-o', out]), 2, /E_FLAG: --include-node Conv#0: expected a node name or layer id/);
    expect(fs.existsSync(out)).toBe(false);
    // Without --data the convolutions stay float (dynamic mode): --allow-unchanged accepts the small share.
    const ok = spawnQtool(['quantize', FMNIST.cnn, '--exclude-node', '/stem/stem.0/Conv', '-o', out, '--json', '--allow-unchanged']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).kind).toBe('qtool.quantize-summary');
  });

  it('every output path is checked before any work: a missing folder fails fast and nothing is half-written', () => {
    const report = path.join(dir, 'sens.json');
    const missing = path.join(dir, 'no-such-folder', 'page.html');
    // was: the whole measurement ran, sens.json was written, then the HTML write failed ("no such file")
    const sens = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--samples', '8', '--probes', '2', '-o', report, '--html', missing]);
    expectOneLineError(sens, 3, /E_WRITE: .*page\.html: cannot write: expected an existing folder .*no-such-folder, got none/);
    expect(fs.existsSync(report)).toBe(false);
    const plan = path.join(dir, 'plan.json');
    const search = spawnQtool(['search', FMNIST.mlp, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--metric', 'agreement', '-o', plan, '--model-out', missing]);
    expectOneLineError(search, 3, /E_WRITE: .*page\.html: cannot write: expected an existing folder/);
    expect(fs.existsSync(plan)).toBe(false);
    expectOneLineError(spawnQtool(['quantize', FMNIST.mlp, '-o', path.join(dir, 'no-such-folder', 'q.onnx')]), 3, /E_WRITE: .*q\.onnx: cannot write: expected an existing folder/);
    expectOneLineError(spawnQtool(['calibrate', FMNIST.mlp, '--data', 'random', '-o', dir]), 3, /E_WRITE: .*: is a directory, expected a file/);
  });

  it('quantize and calibrate refuse an existing output with the same message', () => {
    const q = path.join(dir, 'exists.onnx');
    fs.writeFileSync(q, 'keep');
    expectOneLineError(spawnQtool(['quantize', FMNIST.mlp, '-o', q]), 2, /E_OUTPUT_EXISTS: .*exists\.onnx: output exists: expected a new file \(pass --force to overwrite\)/);
    expectOneLineError(spawnQtool(['calibrate', FMNIST.mlp, '--data', 'random', '-o', q]), 2, /E_OUTPUT_EXISTS: .*exists\.onnx: output exists: expected a new file \(pass --force to overwrite\)/);
    expect(fs.readFileSync(q, 'utf8')).toBe('keep');
  });

  it('eval --reference with other inputs is bad input (exit 3), not an onnxruntime failure (exit 5)', () => {
    const r = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.calibX, '--samples', '8', '--reference', path.join(MODELS, 'synthetic', 'mlp.onnx')]);
    expectOneLineError(r, 3, /E_REFERENCE: .*synthetic\/mlp\.onnx: reference: expected the inputs of .*fmnist_cnn\.onnx \(input\), got x/);
  });

  it('search --help names the --evaluator value a name, not a path', () => {
    const r = spawnQtool(['search', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--evaluator <name>/);
  });
});
