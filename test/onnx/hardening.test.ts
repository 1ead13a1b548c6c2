import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GraphIndex,
  ModelProtoSchema,
  OperatorSetIdProtoSchema,
  SparseTensorProtoSchema,
  externalRef,
  floatTensorProto,
  inspectModel,
  isExternal,
  loadModel,
  makeGraph,
  makeModel,
  makeNode,
  makeValueInfo,
  modelFiles,
  opsetVersion,
  saveModel,
  sparseToDense,
  tensorFromProto,
  tensorToProto,
  walkTensors,
  type Model,
} from '../../src/onnx/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST, MODELS } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';
import { caught } from '../helpers/caught.js';

const tmp = makeTempDir('qtool-harden-onnx-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


/** MatMul(x, W) where W is a sparse initializer of `dims` holding one value. */
function sparseMatMulModel(dims: bigint[]): Model {
  const sp = create(SparseTensorProtoSchema, {
    values: floatTensorProto('W', [1], [2]),
    indices: tensorToProto('W_i', makeTensor('int64', [1], BigInt64Array.from([0n]))),
    dims,
  });
  const g = makeGraph({
    name: 'g',
    nodes: [makeNode({ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'], name: 'mm' })],
    inputs: [makeValueInfo('x', 'float32', [1, Number(dims[0])])],
    outputs: [makeValueInfo('y', 'float32', [1, Number(dims[1] ?? 1n)])],
  });
  g.sparseInitializer.push(sp);
  const f = path.join(tmp, `sparse-${dims.join('x')}.onnx`);
  fs.writeFileSync(f, toBinary(ModelProtoSchema, makeModel({ graph: g, opsets: { '': 17 } })));
  return loadModel(f);
}

describe('sparse tensors are checked before they are densified', () => {
  it('2^30 elements (a 4 GiB dense form from a ~100-byte file): inspect lists the layer without densifying', () => {
    const m = sparseMatMulModel([32768n, 32768n]);
    expect(fs.statSync(m.file).size).toBeLessThan(300);
    const before = process.memoryUsage().rss;
    const s = inspectModel(m);
    expect(s.quantizableLayers.map((l) => [l.weightShape, l.weightDtype])).toEqual([[[32768, 32768], 'float32']]);
    // Nothing near the 4 GiB dense form was allocated.
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
  });

  it('densifying beyond the cap fails with E_TENSOR_SIZE and names --max-tensor-bytes', () => {
    const m = sparseMatMulModel([32768n, 32768n]);
    const e = caught(() => GraphIndex.of(m).constant('W'));
    expect(e.code).toBe('E_TENSOR_SIZE');
    // One stored value cannot stand for 2^30 elements ...
    expect(e.message).toMatch(/ask for 1073741824 elements from 1 stored values: expected at most 4096 elements per stored value/);
    expect(e.hint).toMatch(/--max-tensor-bytes/);
    // ... and enough values for the ratio still meet the byte cap (256 MiB) before anything is allocated.
    const sp = create(SparseTensorProtoSchema, {
      values: floatTensorProto('W', [32768], new Float32Array(32768)),
      indices: tensorToProto('W_i', makeTensor('int64', [32768], BigInt64Array.from({ length: 32768 }, (_, i) => BigInt(i)))),
      dims: [8192n, 8200n],
    });
    const capped = caught(() => sparseToDense(sp));
    expect(capped.message).toMatch(/dense form would take 268697600 bytes .* more than the 268435456-byte tensor cap/);
    expect(caught(() => applyPlan(m, uniformPlan({ bits: 8, mode: 'dynamic' }), undefined)).code).toBe('E_TENSOR_SIZE');
  });

  it('the cap is a parameter: a model loaded with a lower cap refuses a small tensor, a higher one accepts', () => {
    const f = sparseMatMulModel([64n, 64n]).file;
    expect(caught(() => GraphIndex.of(loadModel(f, { maxTensorBytes: 1000 })).constant('W')).code).toBe('E_TENSOR_SIZE');
    const t = tensorFromProto(GraphIndex.of(loadModel(f, { maxTensorBytes: 1 << 20 })).constant('W')!);
    expect(t.dims).toEqual([64, 64]);
    expect(t.data[0]).toBe(2);
  });

  it.each([
    ['product ≥ 2^32', [65536n, 65537n], /elements per stored value/],
    ['product beyond 2^53', [1n << 40n, 1n << 40n], /more than 2\^53 elements/],
    ['negative dim', [-1n, 4n], /expected dims >= 0/],
  ])('%s: E_TENSOR_SIZE, never a RangeError', (_name, dims, re) => {
    const sp = create(SparseTensorProtoSchema, {
      values: floatTensorProto('W', [1], [2]),
      indices: tensorToProto('W_i', makeTensor('int64', [1], BigInt64Array.from([0n]))),
      dims: dims as bigint[],
    });
    const e = caught(() => sparseToDense(sp));
    expect(e.code).toBe('E_TENSOR_SIZE');
    expect(e.message).toMatch(re);
  });

  it('more values than elements and coordinates outside an axis are refused', () => {
    const tooMany = create(SparseTensorProtoSchema, {
      values: floatTensorProto('W', [3], [1, 2, 3]),
      indices: tensorToProto('W_i', makeTensor('int64', [3], BigInt64Array.from([0n, 1n, 1n]))),
      dims: [2n],
    });
    expect(caught(() => sparseToDense(tooMany)).message).toMatch(/at most 2 values/);
    const offAxis = create(SparseTensorProtoSchema, {
      values: floatTensorProto('W', [1], [1]),
      // (0, 5) in a [4, 2] tensor: the linear offset 5 is inside, the column is not.
      indices: tensorToProto('W_i', makeTensor('int64', [1, 2], BigInt64Array.from([0n, 5n]))),
      dims: [4n, 2n],
    });
    expect(caught(() => sparseToDense(offAxis)).message).toMatch(/index 5 on axis 1/);
  });

  it('huge-rank dims are printed elided', () => {
    const dims = Array.from({ length: 5000 }, () => -1n);
    const sp = create(SparseTensorProtoSchema, { values: floatTensorProto('W', [1], [2]), indices: tensorToProto('i', makeTensor('int64', [1], BigInt64Array.from([0n]))), dims });
    const e = caught(() => sparseToDense(sp));
    expect(e.message.length).toBeLessThan(300);
    expect(e.message).toMatch(/… \(5000 dims\)/);
  });
});

describe('external data never comes from outside the model folder', () => {
  it('a data file that is a symlink leaving the folder is refused at load (E_EXTERNAL_DATA_ESCAPE)', () => {
    const src = path.join(MODELS, 'synthetic', 'external.onnx');
    const d = path.join(tmp, 'linked');
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(d);
    fs.mkdirSync(outside);
    fs.copyFileSync(`${src}.data`, path.join(outside, 'external.onnx.data'));
    fs.copyFileSync(src, path.join(d, 'external.onnx'));
    fs.symlinkSync(path.join(outside, 'external.onnx.data'), path.join(d, 'external.onnx.data'));
    expect(caught(() => loadModel(path.join(d, 'external.onnx'))).code).toBe('E_EXTERNAL_DATA_ESCAPE');
    // The same model whose own file is a link into the folder holding its data loads (HF cache layout).
    const snap = path.join(tmp, 'snap');
    fs.mkdirSync(snap);
    fs.copyFileSync(src, path.join(outside, 'external.onnx'));
    fs.symlinkSync(path.join(outside, 'external.onnx'), path.join(snap, 'external.onnx'));
    fs.symlinkSync(path.join(outside, 'external.onnx.data'), path.join(snap, 'external.onnx.data'));
    const m = loadModel(path.join(snap, 'external.onnx'));
    expect(modelFiles(m)).toEqual([path.join(snap, 'external.onnx'), fs.realpathSync(path.join(outside, 'external.onnx.data'))].sort());
  });
});

describe('model + external data saved as an atomic pair', () => {
  function dataLocations(file: string): string[] {
    const m = loadModel(file, { checkExternalData: false });
    return [...new Set([...walkTensors(m.proto.graph!)].filter(isExternal).map((t) => externalRef(t, file).location))];
  }

  it('replacing a pair writes the new data under a fresh name, renames the model last and removes the old data', () => {
    const d = path.join(tmp, 'pair');
    fs.mkdirSync(d);
    const out = path.join(d, 'm.onnx');
    const cnn = loadModel(FMNIST.cnn);
    const mlp = loadModel(FMNIST.mlp);
    saveModel(cnn, out, { externalData: true });
    expect(dataLocations(out)).toEqual(['m.onnx.data']);
    const first = fs.readFileSync(out);
    // Same content again: same name, same bytes (deterministic re-runs).
    saveModel(cnn, out, { externalData: true });
    expect(fs.readFileSync(out).equals(first)).toBe(true);
    // Other content: a fresh name; the old data stays until the model points elsewhere, then goes.
    const res = saveModel(mlp, out, { externalData: true });
    const [loc] = dataLocations(out);
    expect(loc).toMatch(/^m\.onnx\.[0-9a-f]{8}\.data$/);
    expect(res.externalFiles).toEqual([path.join(d, loc)]);
    expect(fs.readdirSync(d).sort()).toEqual(['m.onnx', loc].sort());
    expect(() => loadModel(out)).not.toThrow();
    // And back: the conventional name is free again.
    saveModel(cnn, out, { externalData: true });
    expect(fs.readFileSync(out).equals(first)).toBe(true);
    expect(fs.readdirSync(d).sort()).toEqual(['m.onnx', 'm.onnx.data']);
  });

  it("never overwrites or removes the source model's own data file", () => {
    const d = path.join(tmp, 'own');
    fs.mkdirSync(d);
    // a.onnx reads b.onnx.data; saving it as b.onnx would replace that very file.
    const a = path.join(d, 'a.onnx');
    saveModel(loadModel(FMNIST.cnn), a, { externalData: true, externalDataName: 'b.onnx.data' });
    const dataBefore = fs.readFileSync(path.join(d, 'b.onnx.data'));
    const m = loadModel(a);
    const q = applyPlan(m, uniformPlan({ bits: 8, mode: 'dynamic' }), undefined).model;
    saveModel(q, path.join(d, 'b.onnx'), { externalData: true });
    expect(fs.readFileSync(path.join(d, 'b.onnx.data')).equals(dataBefore)).toBe(true);
    expect(() => loadModel(a)).not.toThrow();
    expect(dataLocations(path.join(d, 'b.onnx'))[0]).toMatch(/^b\.onnx\.[0-9a-f]{8}\.data$/);
  });
});

describe('two imports of the default domain', () => {
  it('opsetVersion reads the one onnxruntime uses (the last) and a rewrite keeps a single import', () => {
    const m = loadModel(FMNIST.mlp);
    m.proto.opsetImport = [create(OperatorSetIdProtoSchema, { domain: '', version: 17n }), create(OperatorSetIdProtoSchema, { domain: 'ai.onnx', version: 11n })];
    expect(opsetVersion(m.proto)).toBe(11);
    const r = applyPlan(m, uniformPlan({ bits: 8, mode: 'dynamic' }), undefined);
    const defaults = r.model.proto.opsetImport.filter((o) => o.domain === '' || o.domain === 'ai.onnx');
    expect(defaults.map((o) => Number(o.version))).toEqual([11]);
    expect(r.summary.notes.some((n) => /default domain 2 times/.test(n))).toBe(true);
  });
});
