import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QtoolError } from '../../src/errors.js';
import { GraphIndex, inspectModel, loadModel, quantizableLayers, tensorFromProto, walkTensors } from '../../src/onnx/index.js';
import { Rng } from '../../src/tensor/index.js';
import { FMNIST, REAL_MODELS } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

type Outcome = 'ok' | string;

/** Everything a later stage does with a freshly loaded model: parse, index, inspect, decode every tensor. */
function exercise(bytes: Uint8Array, name: string): Outcome {
  try {
    const model = loadModel(bytes, { name, baseDir: tmp });
    const index = new GraphIndex(model.proto.graph!, model.file);
    quantizableLayers(index);
    inspectModel(model);
    for (const t of walkTensors(model.proto.graph!)) {
      try {
        tensorFromProto(t, model);
      } catch (err) {
        if (!(err instanceof QtoolError)) throw err;
      }
    }
    return 'ok';
  } catch (err) {
    if (err instanceof QtoolError) {
      expect(err.message.startsWith(`${name}: `), err.message).toBe(true);
      expect(err.message).not.toContain('\n');
      return err.code;
    }
    throw new Error(`${name}: ${String((err as Error)?.stack ?? err)}`);
  }
}

function spread(len: number, count: number): number[] {
  const out = new Set<number>([0, 1, 2, len - 1]);
  for (let i = 0; out.size < count; i++) out.add(Math.floor((i * len) / count));
  return [...out].sort((a, b) => a - b);
}

const tmp = makeTempDir('qtool-robust-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SOURCES: [string, string][] = [
  ['fmnist_cnn', FMNIST.cnn],
  ['silero', REAL_MODELS.silero],
  ['paddleCls', REAL_MODELS.paddleCls],
];

describe('mutated real models end in success or a QtoolError, in-process', () => {
  it.each(SOURCES)('%s: 200 truncations, including 0 and 1 byte', (name, file) => {
    const bytes = fs.readFileSync(file);
    const codes = new Map<Outcome, number>();
    for (const cut of spread(bytes.length, 200)) {
      const o = exercise(bytes.subarray(0, cut), `${name}@${cut}`);
      codes.set(o, (codes.get(o) ?? 0) + 1);
    }
    expect(exercise(bytes.subarray(0, 0), 'empty')).toBe('E_MODEL_PARSE');
    expect(exercise(bytes.subarray(0, 1), 'one-byte')).toBe('E_MODEL_PARSE');
    // Almost every truncation is caught; the rest parse as a shorter but valid model.
    if (process.env.QTOOL_TEST_DEBUG) console.log(name, Object.fromEntries(codes));
    expect(codes.get("E_MODEL_PARSE") ?? 0).toBeGreaterThan(150);
  });

  it.each(SOURCES)('%s: 400 flipped bytes (header, graph structure and weights)', (name, file) => {
    const bytes = fs.readFileSync(file);
    const rng = new Rng(0xbad);
    const positions = new Set<number>();
    for (let i = 0; i < 64; i++) positions.add(i); // ModelProto header
    for (let i = 0; i < 64; i++) positions.add(bytes.length - 1 - i); // graph tail: outputs, opsets, metadata
    while (positions.size < 400) positions.add(rng.int(bytes.length));
    const codes = new Map<Outcome, number>();
    for (const pos of positions) {
      const copy = Buffer.from(bytes);
      copy[pos] ^= [0xff, 0x80, 0x01, 0x7f][pos % 4];
      const o = exercise(copy, `${name}^${pos}`);
      codes.set(o, (codes.get(o) ?? 0) + 1);
    }
    if (process.env.QTOOL_TEST_DEBUG) console.log(name, Object.fromEntries(codes));
    expect(codes.size).toBeGreaterThan(1);
    for (const code of codes.keys()) expect(code).toMatch(/^(ok|E_[A-Z_0-9]+)$/);
  });

  it('random garbage, a JSON document and the other fixtures files', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 50; i++) {
      const junk = new Uint8Array(1 + rng.int(4000));
      for (let k = 0; k < junk.length; k++) junk[k] = rng.int(256);
      expect(exercise(junk, `junk${i}`)).toMatch(/^E_/);
    }
    expect(exercise(new TextEncoder().encode('{"kind":"qtool.plan","version":1}'), 'plan.json')).toBe('E_MODEL_PARSE');
    expect(exercise(fs.readFileSync(FMNIST.calibY), 'calib_y.npy')).toBe('E_MODEL_PARSE');
  });

  it('an empty file, a JSON file, a directory and a missing path, by path', () => {
    const empty = path.join(tmp, 'empty.onnx');
    fs.writeFileSync(empty, '');
    const json = path.join(tmp, 'model.json');
    fs.writeFileSync(json, '{"not": "onnx"}');
    const cases: [string, string][] = [
      [empty, 'E_MODEL_PARSE'],
      [json, 'E_MODEL_PARSE'],
      [tmp, 'E_READ'],
      [path.join(tmp, 'missing.onnx'), 'E_READ'],
    ];
    for (const [f, code] of cases) {
      try {
        loadModel(f);
        throw new Error(`${f} loaded`);
      } catch (err) {
        expect(err).toBeInstanceOf(QtoolError);
        expect((err as QtoolError).code).toBe(code);
        expect((err as QtoolError).message.startsWith(`${f}: `)).toBe(true);
      }
    }
  });
});

describe('mutated models through the real CLI', () => {
  it('exit code 3, one line on stderr naming the file, no stack trace unless --verbose', () => {
    const bytes = fs.readFileSync(FMNIST.cnn);
    const files: string[] = [];
    const put = (name: string, data: Uint8Array | string) => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, data);
      files.push(f);
    };
    put('cut0.onnx', bytes.subarray(0, 0));
    put('cut1.onnx', bytes.subarray(0, 1));
    put('cut-half.onnx', bytes.subarray(0, bytes.length >> 1));
    put('cut-end.onnx', bytes.subarray(0, bytes.length - 3));
    const flipped = Buffer.from(bytes);
    flipped[0] ^= 0xff;
    put('flip0.onnx', flipped);
    put('doc.json', '{"kind": "qtool.plan"}');
    files.push(tmp, path.join(tmp, 'missing.onnx'));
    for (const f of files) {
      const r = spawnQtool(['inspect', f], { timeoutMs: 30_000 });
      expect(r.code, `${f}: ${r.stderr}`).toBe(3);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^qtool: error E_[A-Z_]+: /);
      expect(lines[0]).toContain(f);
      expect(hasStackTrace(r.stderr)).toBe(false);
    }
    const v = spawnQtool(['inspect', files[2], '--verbose'], { timeoutMs: 30_000 });
    expect(v.code).toBe(3);
    expect(v.stderr.split('\n')[0]).toContain(files[2]);
    expect(hasStackTrace(v.stderr)).toBe(true);
  });
});
