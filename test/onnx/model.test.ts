import * as fs from 'node:fs';
import * as path from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, ModelError, QtoolError } from '../../src/errors.js';
import {
  MAX_IR_VERSION,
  ModelProtoSchema,
  externalRef,
  isExternal,
  loadModel,
  parseModelBytes,
  readExternalBytes,
  saveModel,
  tensorFromProto,
  walkGraphs,
  walkTensors,
  type Model,
} from '../../src/onnx/index.js';
import { FMNIST, REAL_MODELS } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('qtool-model-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function catchError(fn: () => unknown): QtoolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QtoolError);
    return err as QtoolError;
  }
  throw new Error('expected a QtoolError');
}

function expectOneLine(e: Error, file: string) {
  expect(e.message.startsWith(`${file}: `)).toBe(true);
  expect(e.message).not.toContain('\n');
}

describe('loadModel', () => {
  it('loads from a path and from bytes', () => {
    const m = loadModel(FMNIST.cnn);
    expect(m.file).toBe(FMNIST.cnn);
    expect(m.baseDir).toBe(path.dirname(FMNIST.cnn));
    expect(Number(m.proto.irVersion)).toBe(8);
    expect(m.proto.graph!.node.length).toBeGreaterThan(0);
    const b = loadModel(fs.readFileSync(FMNIST.cnn), { name: 'mem.onnx', baseDir: tmp });
    expect(b.file).toBe('mem.onnx');
    expect(b.baseDir).toBe(tmp);
    expect(b.proto.graph!.node.length).toBe(m.proto.graph!.node.length);
    expect(loadModel(fs.readFileSync(FMNIST.cnn)).file).toBe('<bytes>');
  });

  it('walks every graph and every tensor, into If subgraphs', () => {
    const m = loadModel(REAL_MODELS.silero);
    const graphs = [...walkGraphs(m.proto.graph!)];
    expect(graphs.length).toBeGreaterThan(1);
    expect(graphs[0]).toBe(m.proto.graph);
    const tensors = [...walkTensors(m.proto.graph!)];
    const inSubgraphs = graphs.slice(1).reduce((n, g) => n + g.initializer.length + g.node.filter((x) => x.opType === 'Constant').length, 0);
    expect(inSubgraphs).toBeGreaterThan(0);
    expect(tensors.length).toBeGreaterThanOrEqual(inSubgraphs);
  });

  it.each([
    ['missing path', () => path.join(tmp, 'nope.onnx'), 'E_READ', /no such file/],
    ['directory', () => tmp, 'E_READ', /is a directory/],
    ['empty file', () => write('empty.onnx', new Uint8Array(0)), 'E_MODEL_PARSE', /empty file/],
    ['JSON file', () => write('j.onnx', '{"kind": "qtool.plan"}'), 'E_MODEL_PARSE', /not an ONNX model/],
    ['JSON array', () => write('a.onnx', '[1, 2]'), 'E_MODEL_PARSE', /not an ONNX model/],
    ['HTML page', () => write('h.onnx', '<!doctype html>'), 'E_MODEL_PARSE', /not an ONNX model/],
    ['text', () => write('t.onnx', 'hello world\n'), 'E_MODEL_PARSE', /not a valid ONNX model/],
    ['truncated model', () => write('trunc.onnx', fs.readFileSync(FMNIST.cnn).subarray(0, 1000)), 'E_MODEL_PARSE', /truncated|not a valid/],
    ['npy file', () => FMNIST.calibY, 'E_MODEL_PARSE', /not a valid ONNX model/],
  ])('%s: InputError naming the file on one line', (_name, make, code, re) => {
    const file = make();
    const e = catchError(() => loadModel(file));
    expect(e).toBeInstanceOf(InputError);
    expect(e.code).toBe(code);
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(re);
    expect(e.file).toBe(file);
    expectOneLine(e, file);
  });

  it('refuses unsupported IR versions with ModelError E_IR_VERSION', () => {
    for (const ir of [99, MAX_IR_VERSION + 1, 2]) {
      const m = loadModel(FMNIST.mlp);
      m.proto.irVersion = BigInt(ir);
      const f = path.join(tmp, `ir${ir}.onnx`);
      saveModel(m, f);
      const e = catchError(() => loadModel(f));
      expect(e).toBeInstanceOf(ModelError);
      expect(e.code).toBe('E_IR_VERSION');
      expect(e.message).toContain(`unsupported IR version ${ir}`);
      expectOneLine(e, f);
    }
  });

  it('refuses structurally incomplete models', () => {
    const base = () => loadModel(FMNIST.mlp).proto;
    const noGraph = base();
    noGraph.graph = undefined;
    expect(catchError(() => parseModelBytes(toBinary(ModelProtoSchema, noGraph), 'x.onnx')).message).toMatch(/no graph/);
    const noIr = base();
    noIr.irVersion = 0n;
    expect(catchError(() => parseModelBytes(toBinary(ModelProtoSchema, noIr), 'x.onnx')).message).toMatch(/ir_version missing/);
    const noOpset = base();
    noOpset.opsetImport = [];
    expect(catchError(() => parseModelBytes(toBinary(ModelProtoSchema, noOpset), 'x.onnx')).message).toMatch(/no opset_import/);
    const noOp = base();
    noOp.graph!.node[0].opType = '';
    expect(catchError(() => parseModelBytes(toBinary(ModelProtoSchema, noOp), 'x.onnx')).message).toMatch(/has no op_type/);
  });
});

function write(name: string, data: string | Uint8Array): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, data);
  return f;
}

describe('external data on load', () => {
  let dir: string;
  let extFile: string;
  let ext: Model;
  beforeAll(() => {
    dir = path.join(tmp, 'ext');
    fs.mkdirSync(dir);
    extFile = path.join(dir, 'mlp.onnx');
    saveModel(loadModel(FMNIST.mlp), extFile, { externalData: true });
    ext = loadModel(extFile);
  });

  /** A copy of the external model in its own folder, with every location replaced by `location`. */
  function withLocation(location: string, name: string): string {
    const m = loadModel(extFile);
    for (const t of walkTensors(m.proto.graph!)) {
      if (isExternal(t)) for (const e of t.externalData) if (e.key === 'location') e.value = location;
    }
    const sub = path.join(tmp, name);
    fs.mkdirSync(sub, { recursive: true });
    const f = path.join(sub, 'model.onnx');
    fs.writeFileSync(f, toBinary(ModelProtoSchema, m.proto));
    return f;
  }

  it('reads external bytes with one positioned read', () => {
    const t = [...walkTensors(ext.proto.graph!)].find(isExternal)!;
    const ref = externalRef(t, ext.file);
    expect(ref.location).toBe('mlp.onnx.data');
    const bytes = readExternalBytes(ext, t);
    expect(bytes.length).toBe(ref.length);
    const whole = fs.readFileSync(path.join(dir, 'mlp.onnx.data'));
    expect(Buffer.from(bytes).equals(whole.subarray(ref.offset, ref.offset + ref.length))).toBe(true);
  });

  it.each([
    ['absolute path', () => path.join(dir, 'mlp.onnx.data')],
    ['parent folder', () => '../ext/mlp.onnx.data'],
    ['parent only', () => '../x'],
    ['nested escape', () => 'a/../../x'],
    ['the folder itself', () => '.'],
  ])('refuses a location that escapes the model folder (%s) with E_EXTERNAL_DATA_ESCAPE', (name, loc) => {
    const f = withLocation(loc(), `escape-${name.replace(/\W/g, '')}`);
    const e = catchError(() => loadModel(f));
    expect(e).toBeInstanceOf(InputError);
    expect(e.code).toBe('E_EXTERNAL_DATA_ESCAPE');
    expectOneLine(e, f);
    // Also when the up-front check is skipped: reading the tensor refuses it.
    const m = loadModel(f, { checkExternalData: false });
    const t = [...walkTensors(m.proto.graph!)].find(isExternal)!;
    expect(catchError(() => tensorFromProto(t, m)).code).toBe('E_EXTERNAL_DATA_ESCAPE');
  });

  it('a missing external data file fails naming the model and the data file', () => {
    const f = withLocation('gone.data', 'missing');
    const e = catchError(() => loadModel(f));
    expect(e).toBeInstanceOf(InputError);
    expect(e.code).toBe('E_EXTERNAL_DATA');
    expect(e.message).toMatch(/external data file "gone\.data" of tensor ".+": no such file/);
    expectOneLine(e, f);
    const m = loadModel(f, { checkExternalData: false });
    const t = [...walkTensors(m.proto.graph!)].find(isExternal)!;
    expect(catchError(() => tensorFromProto(t, m)).message).toMatch(/"gone\.data": no such file/);
  });

  it('a too-short external data file fails with the byte range it needed', () => {
    const f = withLocation('short.data', 'short');
    const whole = fs.readFileSync(path.join(dir, 'mlp.onnx.data'));
    fs.writeFileSync(path.join(path.dirname(f), 'short.data'), whole.subarray(0, whole.length - 100));
    const e = catchError(() => loadModel(f));
    expect(e.code).toBe('E_EXTERNAL_DATA');
    expect(e.message).toMatch(/external data file "short\.data" is \d+ bytes, tensor ".+" needs bytes \d+\.\.\d+/);
    expectOneLine(e, f);
    const m = loadModel(f, { checkExternalData: false });
    const last = [...walkTensors(m.proto.graph!)].filter(isExternal).sort((a, b) => externalRef(b, f).offset - externalRef(a, f).offset)[0];
    expect(catchError(() => tensorFromProto(last, m)).message).toMatch(/ends before tensor/);
  });

  it('an external data location that is a directory fails as InputError', () => {
    const f = withLocation('sub', 'dirloc');
    fs.mkdirSync(path.join(path.dirname(f), 'sub'));
    const e = catchError(() => loadModel(f));
    expect(e.code).toBe('E_EXTERNAL_DATA');
    expect(e.message).toMatch(/expected a file/);
    const m = loadModel(f, { checkExternalData: false });
    const t = [...walkTensors(m.proto.graph!)].find(isExternal)!;
    expect(catchError(() => tensorFromProto(t, m))).toBeInstanceOf(InputError);
  });

  it('refuses malformed external entries', () => {
    const m = loadModel(extFile);
    const t = [...walkTensors(m.proto.graph!)].find(isExternal)!;
    const offset = t.externalData.find((e) => e.key === 'offset')!;
    offset.value = '-5';
    expect(catchError(() => externalRef(t, 'm.onnx')).message).toMatch(/invalid external offset "-5"/);
    offset.value = 'abc';
    expect(catchError(() => externalRef(t, 'm.onnx')).code).toBe('E_EXTERNAL_DATA');
    offset.value = '0';
    t.externalData = t.externalData.filter((e) => e.key !== 'location');
    expect(catchError(() => externalRef(t, 'm.onnx')).message).toMatch(/has no location/);
  });

  it('an entry without length reads to the end of the file', () => {
    const m = loadModel(extFile);
    const tensors = [...walkTensors(m.proto.graph!)].filter(isExternal);
    const last = tensors.sort((a, b) => externalRef(b, extFile).offset - externalRef(a, extFile).offset)[0];
    const want = tensorFromProto(last, m);
    last.externalData = last.externalData.filter((e) => e.key !== 'length');
    expect(externalRef(last, extFile).length).toBe(-1);
    const got = tensorFromProto(last, m);
    expect([...got.data]).toEqual([...want.data]);
  });
});
