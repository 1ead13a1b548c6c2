/**
 * An independent check: the official `onnx` Python package (python3-onnx; .ci/run installs it)
 * validates the fixtures and models qtool re-saved. Skipped cleanly when it is not installed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { FMNIST, MODELS, REAL_MODELS } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const PYTHON = ['python3', '/usr/bin/python3'].find((py) => spawnSync(py, ['-c', 'import onnx, onnx.checker'], { stdio: 'ignore' }).status === 0);

const SCRIPT = `
import json, sys, onnx, onnx.checker
out = {}
for p in sys.argv[1:]:
    try:
        m = onnx.load(p)
        if m.ir_version > onnx.IR_VERSION:
            out[p] = 'skipped: IR %d is newer than this onnx package (%d)' % (m.ir_version, onnx.IR_VERSION)
            continue
        onnx.checker.check_model(m)
        out[p] = 'ok'
    except Exception as e:
        out[p] = 'error: %s' % str(e).splitlines()[0] if str(e) else type(e).__name__
print(json.dumps(out))
`;

function check(files: string[]): Record<string, string> {
  const r = spawnSync(PYTHON!, ['-c', SCRIPT, ...files], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

const tmp = makeTempDir('qtool-checker-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!PYTHON)('onnx.checker (python3 onnx) accepts what qtool reads and writes', () => {
  it('the fixture models and qtool re-saves of the real models', () => {
    const fixtures = fs.readdirSync(MODELS).filter((f) => f.endsWith('.onnx')).map((f) => path.join(MODELS, f));
    const resaved = Object.entries(REAL_MODELS).map(([name, file]) => {
      const out = path.join(tmp, `${name}.onnx`);
      saveModel(loadModel(file), out);
      return out;
    });
    const result = check([...fixtures, ...resaved]);
    for (const [file, verdict] of Object.entries(result)) expect(verdict, file).toMatch(/^(ok|skipped)/);
    expect(result[FMNIST.cnn]).toBe('ok');
    expect(result[path.join(tmp, 'silero.onnx')]).toBe('ok');
  });

  it('a model qtool saved with external data', () => {
    const f = path.join(tmp, 'ext', 'cnn.onnx');
    fs.mkdirSync(path.dirname(f));
    saveModel(loadModel(FMNIST.cnn), f, { externalData: true });
    expect(check([f])[f]).toBe('ok');
  });

  it('and rejects a broken model (the check can fail)', () => {
    const m = loadModel(FMNIST.mlp);
    m.proto.graph!.node[0].input[0] = 'no_such_value';
    const f = path.join(tmp, 'broken.onnx');
    saveModel(m, f);
    expect(check([f])[f]).toMatch(/^error: /);
  });
});
