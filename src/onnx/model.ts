import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { InputError, ModelError } from '../errors.js';
import { describeFsError, kindOf, readPipeSync, resolveInside } from '../files.js';
import { checkSparseShape, checkTensorDeclaredSize, declaredTensorBytes } from './tensor-checks.js';
import { ModelProtoSchema, DataLocation, type ModelProto, type TensorProto, type GraphProto } from './proto.js';

/** Highest ONNX IR version the bundled schema (ONNX 1.20) describes. */
export const MAX_IR_VERSION = 13;
export const MIN_IR_VERSION = 3;

/** A loaded model: the lossless protobuf tree plus where its external data lives. */
export interface Model {
  readonly proto: ModelProto;
  /** Path the model was loaded from, for messages ("<bytes>" when loaded from memory). */
  readonly file: string;
  /** Folder that external-data locations are relative to. */
  readonly baseDir: string;
  /** Cap on a densified sparse tensor, in bytes (default DEFAULT_MAX_TENSOR_BYTES, 1 GiB). */
  readonly maxTensorBytes?: number;
}

export interface LoadOptions {
  /** Folder for external data when loading from bytes (default: cwd). */
  baseDir?: string;
  /** Name to use in messages when loading from bytes. */
  name?: string;
  /** Check that every external-data file exists and is large enough (default true). */
  checkExternalData?: boolean;
  /** Cap on a densified sparse tensor, in bytes (see Model.maxTensorBytes). */
  maxTensorBytes?: number;
}

/** Load an ONNX model from a path or from bytes. Never copies tensor bytes. */
export function loadModel(source: string | Uint8Array, opts: LoadOptions = {}): Model {
  let bytes: Uint8Array;
  let file: string;
  let baseDir: string;
  if (typeof source === 'string') {
    file = source;
    baseDir = path.dirname(path.resolve(source));
    let stat: fs.Stats;
    try {
      stat = fs.statSync(source);
    } catch (err) {
      throw new InputError('E_READ', describeFsError(err, 'cannot read model'), { file, cause: err });
    }
    if (stat.isDirectory()) throw new InputError('E_READ', 'is a directory, expected an .onnx file', { file });
    if (!stat.isFile() && !stat.isFIFO()) throw new InputError('E_READ', `is ${kindOf(stat)}: expected an .onnx file`, { file });
    if (stat.size > 0x7fffffff) {
      throw new InputError('E_MODEL_PARSE', `file is ${stat.size} bytes; a protobuf model cannot exceed 2 GiB (store large tensors as external data)`, { file });
    }
    try {
      bytes = stat.isFIFO() ? readPipeSync(source) : fs.readFileSync(source);
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError('E_READ', describeFsError(err, 'cannot read model'), { file, cause: err });
    }
  } else {
    bytes = source;
    file = opts.name ?? '<bytes>';
    baseDir = path.resolve(opts.baseDir ?? '.');
  }
  const proto = parseModelBytes(bytes, file);
  const model: Model = opts.maxTensorBytes !== undefined ? { proto, file, baseDir, maxTensorBytes: opts.maxTensorBytes } : { proto, file, baseDir };
  if (opts.checkExternalData ?? true) checkExternalData(model);
  return model;
}

export function parseModelBytes(bytes: Uint8Array, file: string): ModelProto {
  if (bytes.length === 0) throw new InputError('E_MODEL_PARSE', 'empty file, expected an ONNX model', { file });
  const first = bytes[0];
  if (first === 0x7b || first === 0x5b || first === 0x3c) {
    // '{', '[', '<': JSON, XML or HTML, never a protobuf ModelProto (field 15/11/7 groups).
    throw new InputError('E_MODEL_PARSE', 'not an ONNX model (looks like a text file)', { file });
  }
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new InputError('E_MODEL_PARSE', `not a valid ONNX model (protobuf: ${why}); the file may be truncated or corrupt`, { file, cause: err });
  }
  validateModel(proto, file);
  return proto;
}

function validateModel(proto: ModelProto, file: string): void {
  const ir = Number(proto.irVersion);
  if (!proto.graph) throw new InputError('E_MODEL_PARSE', 'not a valid ONNX model: no graph (file truncated or not ONNX)', { file });
  if (ir === 0) throw new InputError('E_MODEL_PARSE', 'not a valid ONNX model: ir_version missing', { file });
  if (ir < MIN_IR_VERSION || ir > MAX_IR_VERSION) {
    throw new ModelError('E_IR_VERSION', `unsupported IR version ${ir}: expected ${MIN_IR_VERSION}..${MAX_IR_VERSION}`, { file });
  }
  if (proto.opsetImport.length === 0) {
    throw new InputError('E_MODEL_PARSE', 'not a valid ONNX model: no opset_import (file truncated?)', { file });
  }
  for (const g of walkGraphs(proto.graph)) {
    for (const n of g.node) {
      if (!n.opType) throw new InputError('E_MODEL_PARSE', `not a valid ONNX model: a node in graph "${g.name}" has no op_type`, { file });
    }
  }
  // Declared sizes must match the data: nothing downstream (onnxruntime included) may size a buffer
  // from dims the bytes do not back. Sparse tensors' dense dims are checked where they are densified.
  for (const t of walkTensors(proto.graph)) checkTensorDeclaredSize(t, file);
  for (const g of walkGraphs(proto.graph)) {
    for (const sp of g.sparseInitializer) for (const t of [sp.values, sp.indices]) if (t) checkTensorDeclaredSize(t, file);
  }
}

/**
 * Check every sparse tensor's declared dense shape against the tensor cap (checkSparseShape):
 * called before a model goes to onnxruntime, which densifies sparse initializers itself.
 */
export function checkSparseTensors(model: Model): void {
  const opts = model.maxTensorBytes !== undefined ? { maxTensorBytes: model.maxTensorBytes } : {};
  for (const g of walkGraphs(model.proto.graph!)) {
    for (const sp of g.sparseInitializer) checkSparseShape(sp, model.file, opts);
    for (const n of g.node) for (const a of n.attribute) if (a.sparseTensor) checkSparseShape(a.sparseTensor, model.file, opts);
  }
}

/** The main graph and every subgraph (If/Loop/Scan bodies), depth first. */
export function* walkGraphs(graph: GraphProto): Generator<GraphProto> {
  yield graph;
  for (const node of graph.node) {
    for (const attr of node.attribute) {
      if (attr.g) yield* walkGraphs(attr.g);
      for (const g of attr.graphs) yield* walkGraphs(g);
    }
  }
}

/** Every TensorProto that holds data in the model: initializers and Constant/attribute tensors, in all graphs. */
export function* walkTensors(graph: GraphProto): Generator<TensorProto> {
  for (const g of walkGraphs(graph)) {
    yield* g.initializer;
    for (const node of g.node) {
      for (const attr of node.attribute) {
        if (attr.t) yield attr.t;
        yield* attr.tensors;
      }
    }
  }
}

export interface ExternalRef {
  location: string;
  offset: number;
  /** Byte length, or -1 when the entry omits it (then: to end of file). */
  length: number;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === DataLocation.EXTERNAL;
}

export function externalRef(t: TensorProto, file: string): ExternalRef {
  let location = '';
  let offset = 0;
  let length = -1;
  for (const e of t.externalData) {
    if (e.key === 'location') location = e.value;
    else if (e.key === 'offset') offset = parseIntField(e.value, 'offset', t, file);
    else if (e.key === 'length') length = parseIntField(e.value, 'length', t, file);
  }
  if (!location) throw new InputError('E_EXTERNAL_DATA', `tensor "${t.name}" is external but has no location`, { file });
  return { location, offset, length };
}

function parseIntField(v: string, key: string, t: TensorProto, file: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InputError('E_EXTERNAL_DATA', `tensor "${t.name}" has invalid external ${key} "${v}"`, { file });
  }
  return n;
}

/**
 * Absolute path of a tensor's external data file, refusing locations that escape the model folder,
 * lexically or through a symlink/hard-to-see folder link, and non-regular files (FIFO, device): see
 * resolveInside. When the model file is itself a symlink (a Hugging Face cache snapshot), its real
 * folder counts as inside too, where such caches keep the data blobs.
 */
export function externalPath(model: Model, ref: ExternalRef): string {
  return resolveInside(model.baseDir, ref.location, model.file, { roots: modelRealRoots(model) });
}

function modelRealRoots(model: Model): string[] {
  if (model.file === '<bytes>' || !fs.existsSync(model.file)) return [];
  try {
    return [path.dirname(fs.realpathSync(model.file))];
  } catch {
    return [];
  }
}

/** The files a model is read from: the model file (unless loaded from bytes) and every external data file, sorted. */
export function modelFiles(model: Model): string[] {
  const files = new Set<string>();
  if (model.file !== '<bytes>') files.add(path.resolve(model.file));
  for (const t of walkTensors(model.proto.graph!)) if (isExternal(t)) files.add(externalPath(model, externalRef(t, model.file)));
  return [...files].sort();
}

function checkExternalData(model: Model): void {
  const sizes = new Map<string, number>();
  for (const t of walkTensors(model.proto.graph!)) {
    if (!isExternal(t)) continue;
    const ref = externalRef(t, model.file);
    const p = externalPath(model, ref);
    let size = sizes.get(p);
    if (size === undefined) {
      let stat: fs.Stats;
      try {
        stat = fs.statSync(p);
      } catch (err) {
        throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}" of tensor "${t.name}": ${describeFsError(err, 'cannot read')}`, { file: model.file, cause: err });
      }
      if (!stat.isFile()) {
        throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}" of tensor "${t.name}": expected a file, got a directory or special file`, { file: model.file });
      }
      size = stat.size;
      sizes.set(p, size);
    }
    const end = ref.length < 0 ? size : ref.offset + ref.length;
    const declared = declaredTensorBytes(t.dataType, t.dims.map(Number));
    if (declared !== undefined && (ref.length >= 0 ? ref.length !== declared : size - ref.offset < declared)) {
      throw new InputError('E_EXTERNAL_DATA', `tensor "${t.name}" declares ${declared} bytes, its external data entry in "${ref.location}" gives ${ref.length >= 0 ? ref.length : size - ref.offset}`, { file: model.file });
    }
    if (ref.offset > size || end > size) {
      throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}" is ${size} bytes, tensor "${t.name}" needs bytes ${ref.offset}..${end}`, { file: model.file });
    }
  }
}

/** Read the bytes of an external tensor (one positioned read; the file is never loaded whole). */
export function readExternalBytes(model: Model, t: TensorProto): Uint8Array {
  const ref = externalRef(t, model.file);
  const p = externalPath(model, ref);
  let fd: number;
  try {
    fd = fs.openSync(p, 'r');
  } catch (err) {
    throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}": ${describeFsError(err, 'cannot read')}`, { file: model.file, cause: err });
  }
  const short = () => new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}" ends before tensor "${t.name}" does`, { file: model.file });
  try {
    const len = ref.length >= 0 ? ref.length : fs.fstatSync(fd).size - ref.offset;
    if (len < 0) throw short();
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, got, Math.min(len - got, 0x40000000), ref.offset + got);
      } catch (err) {
        throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}": ${describeFsError(err, 'cannot read')}`, { file: model.file, cause: err });
      }
      if (n === 0) throw short();
      got += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, len);
  } finally {
    fs.closeSync(fd);
  }
}
