import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, type DescMessage } from '@bufbuild/protobuf';
import { InputError, ModelError, QtoolError } from '../errors.js';
import { PENDING_TEMP_FILES, describeFsError, resolveInside, writeFileAtomic } from '../files.js';
import { coalesce, encodeToPieces } from './encode.js';
import { externalPath, externalRef, isExternal, walkTensors, type Model } from './model.js';
import { DataLocation, ModelProtoSchema, StringStringEntryProtoSchema, TensorProtoSchema, type TensorProto } from './proto.js';

/** Protobuf cannot serialize a message of 2 GiB or more; leave room for the graph itself. */
export const PROTOBUF_LIMIT_BYTES = 0x7fffffff;
const AUTO_EXTERNAL_BYTES = PROTOBUF_LIMIT_BYTES - 64 * 1024 * 1024;
const EXTERNAL_ALIGN = 64;

export interface SaveOptions {
  /**
   * true: store every tensor of at least `externalThreshold` bytes in one external data file;
   * false: everything inline (fails above 2 GiB); 'auto' (default): external only when needed.
   */
  externalData?: boolean | 'auto';
  /** Name of the external data file, relative to the model's folder (default: `<model file name>.data`). */
  externalDataName?: string;
  /** Tensors smaller than this stay inline when data goes external (default 1024 bytes). */
  externalThreshold?: number;
}

export interface SaveResult {
  file: string;
  bytes: number;
  externalFiles: string[];
  externalBytes: number;
}

/** Total bytes of tensor data in the model (inline and external). */
export function tensorDataBytes(model: Model): number {
  let total = 0;
  for (const t of walkTensors(model.proto.graph!)) {
    if (isExternal(t)) {
      const ref = externalRef(t, model.file);
      total += ref.length >= 0 ? ref.length : fs.statSync(externalPath(model, ref)).size - ref.offset;
    } else {
      total += t.rawData.length + 4 * t.floatData.length + 4 * t.int32Data.length + 8 * t.int64Data.length + 8 * t.doubleData.length + 8 * t.uint64Data.length;
    }
  }
  return total;
}

/**
 * Save a model atomically. A model loaded and saved unchanged (same folder, no external-data
 * change) comes out byte-identical. Large tensors are written by reference, never concatenated.
 */
export function saveModel(model: Model, file: string, opts: SaveOptions = {}): SaveResult {
  const mode = opts.externalData ?? 'auto';
  const outDir = path.dirname(path.resolve(file));
  const dataBytes = tensorDataBytes(model);
  const externalize = mode === true || (mode === 'auto' && dataBytes > AUTO_EXTERNAL_BYTES);
  if (!externalize && dataBytes > AUTO_EXTERNAL_BYTES && !hasOnlyExternalBigTensors(model)) {
    throw new ModelError('E_MODEL_TOO_LARGE', `model holds ${dataBytes} bytes of tensors; protobuf cannot hold 2 GiB or more: save with external data`, { file });
  }
  if (externalize) return saveWithExternalData(model, file, opts);

  const externalFiles: string[] = [];
  let externalBytes = 0;
  if (outDir !== path.resolve(model.baseDir)) {
    // The model moves folders: copy the external files its tensors reference, byte for byte.
    const locations = new Set<string>();
    for (const t of walkTensors(model.proto.graph!)) if (isExternal(t)) locations.add(externalRef(t, model.file).location);
    for (const loc of [...locations].sort()) {
      const src = resolveInside(model.baseDir, loc, model.file);
      const dst = resolveInside(outDir, loc, file);
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      copyFileAtomic(src, dst);
      externalFiles.push(dst);
      externalBytes += fs.statSync(dst).size;
    }
  }
  const pieces = encodeToPieces(ModelProtoSchema, model.proto, { bigBytes: 64 * 1024 });
  if (pieces.length > PROTOBUF_LIMIT_BYTES) {
    throw new ModelError('E_MODEL_TOO_LARGE', `serialized model is ${pieces.length} bytes; protobuf cannot hold 2 GiB or more: save with external data`, { file });
  }
  writeFileAtomic(file, coalesce(pieces.list));
  return { file, bytes: pieces.length, externalFiles, externalBytes };
}

function hasOnlyExternalBigTensors(model: Model): boolean {
  let inline = 0;
  for (const t of walkTensors(model.proto.graph!)) if (!isExternal(t)) inline += t.rawData.length;
  return inline <= AUTO_EXTERNAL_BYTES;
}

function copyFileAtomic(src: string, dst: string): void {
  if (path.resolve(src) === path.resolve(dst)) return;
  const tmp = path.join(path.dirname(dst), `.qtool-tmp-${process.pid}-${path.basename(dst)}`);
  PENDING_TEMP_FILES.add(tmp);
  try {
    fs.copyFileSync(src, tmp);
    fs.renameSync(tmp, dst);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new InputError('E_WRITE', describeFsError(err, 'cannot copy external data'), { file: dst, cause: err });
  } finally {
    PENDING_TEMP_FILES.delete(tmp);
  }
}

function saveWithExternalData(model: Model, file: string, opts: SaveOptions): SaveResult {
  const outDir = path.dirname(path.resolve(file));
  const dataName = opts.externalDataName ?? `${path.basename(file)}.data`;
  const dataPath = resolveInside(outDir, dataName, file);
  const threshold = opts.externalThreshold ?? 1024;
  const tmpData = path.join(outDir, `.qtool-tmp-${process.pid}-${path.basename(dataPath)}`);
  PENDING_TEMP_FILES.add(tmpData);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmpData, 'w');
    let offset = 0;
    const moved = new Map<TensorProto, TensorProto>();
    const copies = new Set<TensorProto>();
    const dataFd = fd;
    const rewrite = (schema: DescMessage, msg: object): object => {
      if (schema.typeName !== TensorProtoSchema.typeName) return msg;
      const t = msg as TensorProto;
      const done = moved.get(t);
      if (done) return done;
      // The encoder looks at the replacement again; it is final, not a tensor of the source model.
      if (copies.has(t)) return t;
      const external = isExternal(t);
      if (!external && t.rawData.length < threshold) return msg;
      const pad = (EXTERNAL_ALIGN - (offset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
      if (pad) {
        fs.writeSync(dataFd, new Uint8Array(pad));
        offset += pad;
      }
      let length: number;
      if (external) {
        length = copyExternalBytes(model, t, dataFd);
      } else {
        length = t.rawData.length;
        writeAllSync(dataFd, t.rawData);
      }
      const copy = Object.assign(Object.create(Object.getPrototypeOf(t)) as TensorProto, t);
      copy.rawData = new Uint8Array(0);
      copy.dataLocation = DataLocation.EXTERNAL;
      copy.externalData = [
        create(StringStringEntryProtoSchema, { key: 'location', value: dataName }),
        create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
      ];
      offset += length;
      moved.set(t, copy);
      copies.add(copy);
      return copy;
    };
    const pieces = encodeToPieces(ModelProtoSchema, model.proto, { bigBytes: 64 * 1024, rewrite: rewrite as never });
    if (pieces.length > PROTOBUF_LIMIT_BYTES) {
      throw new ModelError('E_MODEL_TOO_LARGE', `graph without its tensors is still ${pieces.length} bytes; protobuf cannot hold 2 GiB or more`, { file });
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmpData, dataPath);
    writeFileAtomic(file, coalesce(pieces.list));
    return { file, bytes: pieces.length, externalFiles: [dataPath], externalBytes: offset };
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmpData, { force: true });
    if (err instanceof QtoolError || typeof (err as NodeJS.ErrnoException)?.code !== 'string') throw err;
    throw new InputError('E_WRITE', describeFsError(err, 'cannot write model'), { file, cause: err });
  } finally {
    PENDING_TEMP_FILES.delete(tmpData);
  }
}

function writeAllSync(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += fs.writeSync(fd, bytes, written, Math.min(bytes.length - written, 0x40000000));
}

const COPY_CHUNK_BYTES = 16 * 1024 * 1024;
let copyBuffer: Buffer | undefined;

/**
 * Append an external tensor's bytes to `dataFd` through one reused buffer: a multi-GiB model
 * is copied without allocating (and page-faulting) a fresh buffer per tensor. Returns the length.
 */
function copyExternalBytes(model: Model, t: TensorProto, dataFd: number): number {
  const ref = externalRef(t, model.file);
  const src = externalPath(model, ref);
  let fd: number;
  try {
    fd = fs.openSync(src, 'r');
  } catch (err) {
    throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}": ${describeFsError(err, 'cannot read')}`, { file: model.file, cause: err });
  }
  try {
    const length = ref.length >= 0 ? ref.length : fs.fstatSync(fd).size - ref.offset;
    const buf = (copyBuffer ??= Buffer.allocUnsafe(COPY_CHUNK_BYTES));
    for (let done = 0; done < length; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(length - done, buf.length), ref.offset + done);
      if (n === 0) throw new InputError('E_EXTERNAL_DATA', `external data file "${ref.location}" ends before tensor "${t.name}" does`, { file: model.file });
      writeAllSync(dataFd, buf.subarray(0, n));
      done += n;
    }
    return length;
  } finally {
    fs.closeSync(fd);
  }
}
