import * as fs from 'node:fs';
import * as path from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ModelProtoSchema,
  coalesce,
  encodeToPieces,
  isExternal,
  loadModel,
  saveModel,
  tensorDataBytes,
  tensorFromProto,
  walkTensors,
  type Model,
} from '../../src/onnx/index.js';
import { Session } from '../../src/runtime/index.js';
import { Rng, makeTensor } from '../../src/tensor/index.js';
import { FMNIST, MODELS, REAL_MODELS } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

/** Every fixture model (as other generators add them) and every real third-party model. */
const ALL_MODELS: [string, string][] = [
  ...fs
    .readdirSync(MODELS)
    .filter((f) => f.endsWith('.onnx'))
    .sort()
    .map((f): [string, string] => [f, path.join(MODELS, f)]),
  ...Object.entries(REAL_MODELS),
];

const tmp = makeTempDir('qtool-save-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function concat(list: readonly Uint8Array[]): Buffer {
  return Buffer.concat(list);
}

describe('byte-exact round trip', () => {
  it.each(ALL_MODELS)('%s: load + save unchanged gives identical bytes (big-bytes and piece-per-field encoders)', (name, file) => {
    const original = fs.readFileSync(file);
    const model = loadModel(file);
    // Default path: big tensors by reference.
    const out = path.join(tmp, `rt-${name}`);
    const res = saveModel(model, out);
    expect(res.bytes).toBe(original.length);
    expect(fs.readFileSync(out).equals(original)).toBe(true);
    // Every bytes field referenced: exercises the field-by-field piece encoder everywhere.
    const small = encodeToPieces(ModelProtoSchema, model.proto, { bigBytes: 1 });
    expect(small.length).toBe(original.length);
    expect(small.list.length).toBeGreaterThan(1);
    expect(concat(small.list).equals(original)).toBe(true);
    expect(concat(coalesce(small.list, 4096)).equals(original)).toBe(true);
    // And protobuf-es itself agrees.
    expect(Buffer.from(toBinary(ModelProtoSchema, model.proto)).equals(original)).toBe(true);
  });

  it('keeps unknown fields in place', () => {
    const original = fs.readFileSync(FMNIST.mlp);
    // Append an unknown field (number 1000, varint 7) to the ModelProto.
    const extra = Buffer.concat([original, Buffer.from([0xc0, 0x3e, 0x07])]);
    const model = loadModel(extra, { name: 'extra.onnx' });
    const out = path.join(tmp, 'unknown.onnx');
    saveModel(model, out);
    expect(fs.readFileSync(out).equals(extra)).toBe(true);
    expect(concat(encodeToPieces(ModelProtoSchema, model.proto, { bigBytes: 1 }).list).equals(extra)).toBe(true);
  });

  it('coalesce merges small pieces and keeps big ones by reference', () => {
    const big = new Uint8Array(10);
    const pieces = [Uint8Array.from([1]), Uint8Array.from([2, 3]), big, Uint8Array.from([4])];
    const out = coalesce(pieces, 8);
    expect(out.map((p) => [...p])).toEqual([[1, 2, 3], [...big], [4]]);
    expect(out[1]).toBe(big);
    expect(coalesce([])).toEqual([]);
  });
});

describe('external data', () => {
  let original: Model;
  let dir: string;
  let extFile: string;
  let dataFile: string;
  beforeAll(() => {
    original = loadModel(FMNIST.cnn);
    dir = path.join(tmp, 'ext');
    fs.mkdirSync(dir);
    extFile = path.join(dir, 'cnn.onnx');
    dataFile = path.join(dir, 'cnn.onnx.data');
  });

  it('saves big tensors to one aligned data file and loads them back unchanged', () => {
    const res = saveModel(original, extFile, { externalData: true });
    expect(res.externalFiles).toEqual([dataFile]);
    expect(fs.statSync(dataFile).size).toBe(res.externalBytes);
    expect(fs.statSync(extFile).size).toBe(res.bytes);
    expect(res.bytes).toBeLessThan(20_000);
    const loaded = loadModel(extFile);
    expect(tensorDataBytes(loaded)).toBe(tensorDataBytes(original));
    const before = [...walkTensors(original.proto.graph!)];
    const after = [...walkTensors(loaded.proto.graph!)];
    expect(after.map((t) => t.name)).toEqual(before.map((t) => t.name));
    let external = 0;
    after.forEach((t, i) => {
      if (isExternal(t)) {
        external++;
        expect(t.rawData.length).toBe(0);
        const entries = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
        expect(entries.location).toBe('cnn.onnx.data');
        expect(Number(entries.offset) % 64).toBe(0);
        expect(Number(entries.length)).toBe(before[i].rawData.length);
      } else {
        expect(before[i].rawData.length).toBeLessThan(1024);
      }
      const a = tensorFromProto(before[i], original);
      const b = tensorFromProto(t, loaded);
      expect(b.dtype).toBe(a.dtype);
      expect(b.dims).toEqual(a.dims);
      expect(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength))).toBe(true);
    });
    expect(external).toBe(before.filter((t) => t.rawData.length >= 1024).length);
    expect(external).toBe(7);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.qtool-tmp-'))).toEqual([]);
  });

  it('runs in onnxruntime-node from the path and from the loaded Model, with the same outputs as the inline model', async () => {
    const x = makeTensor('float32', [2, 1, 28, 28], new Rng(3).fillUniform(new Float32Array(2 * 784)));
    const ref = await Session.open(FMNIST.cnn);
    const ext = await Session.open(extFile);
    const mem = await Session.open(loadModel(extFile));
    const want = (await ref.run({ input: x })).logits;
    expect(want.dims).toEqual([2, 10]);
    for (const s of [ext, mem]) {
      const got = (await s.run({ input: x })).logits;
      expect([...got.data]).toEqual([...want.data]);
      await s.release();
    }
    await ref.release();
  });

  it('re-saving in place is byte-identical, inline refs or re-externalized', () => {
    const modelBytes = fs.readFileSync(extFile);
    const dataBytes = fs.readFileSync(dataFile);
    saveModel(loadModel(extFile), extFile);
    expect(fs.readFileSync(extFile).equals(modelBytes)).toBe(true);
    expect(fs.readFileSync(dataFile).equals(dataBytes)).toBe(true);
    saveModel(loadModel(extFile), extFile, { externalData: true });
    expect(fs.readFileSync(extFile).equals(modelBytes)).toBe(true);
    expect(fs.readFileSync(dataFile).equals(dataBytes)).toBe(true);
  });

  it('saving to another folder copies the data file; saving inline brings the bytes back', () => {
    const other = path.join(tmp, 'other');
    fs.mkdirSync(other);
    const res = saveModel(loadModel(extFile), path.join(other, 'cnn.onnx'));
    expect(res.externalFiles).toEqual([path.join(other, 'cnn.onnx.data')]);
    expect(fs.readFileSync(path.join(other, 'cnn.onnx')).equals(fs.readFileSync(extFile))).toBe(true);
    expect(fs.readFileSync(path.join(other, 'cnn.onnx.data')).equals(fs.readFileSync(dataFile))).toBe(true);
    expect(() => loadModel(path.join(other, 'cnn.onnx'))).not.toThrow();
  });

  it('honours externalDataName and externalThreshold', () => {
    const f = path.join(tmp, 'named.onnx');
    const res = saveModel(original, f, { externalData: true, externalDataName: 'weights.bin', externalThreshold: 100_000 });
    expect(res.externalFiles).toEqual([path.join(tmp, 'weights.bin')]);
    const loaded = loadModel(f);
    const ext = [...walkTensors(loaded.proto.graph!)].filter(isExternal);
    const bigOnes = [...walkTensors(original.proto.graph!)].filter((t) => t.rawData.length >= 100_000);
    expect(ext.map((t) => t.name)).toEqual(bigOnes.map((t) => t.name));
    expect(ext.length).toBeGreaterThan(0);
  });

  it('a small model stays inline by default', () => {
    const f = path.join(tmp, 'inline.onnx');
    const res = saveModel(original, f);
    expect(res.externalFiles).toEqual([]);
    expect([...walkTensors(loadModel(f).proto.graph!)].some(isExternal)).toBe(false);
  });
});
