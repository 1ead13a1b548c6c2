import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, type DescMessage } from '@bufbuild/protobuf';
import { InputError, ModelError, QtoolError } from '../errors.js';
import { PENDING_TEMP_FILES, describeFsError, resolveInside, writeFileAtomic } from '../files.js';
import { coalesce, encodeToPieces } from './encode.js';
import { externalPath, externalRef, isExternal, loadModel, walkTensors, type Model } from './model.js';
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

/**
 * Every file saveModel(model, file, opts) may write: the model, its `.data` companion (external data),
 * or the external files it copies when the model moves folders. Commands pass these to the output
 * guard (checkOutputPaths) before any work.
 */
export function saveTargets(model: Model, file: string, opts: SaveOptions = {}): string[] {
  const outDir = path.dirname(path.resolve(file));
  const targets = [file];
  const mode = opts.externalData ?? 'auto';
  if (mode === true || (mode === 'auto' && tensorDataBytes(model) > AUTO_EXTERNAL_BYTES)) {
    targets.push(path.join(outDir, opts.externalDataName ?? `${path.basename(file)}.data`));
  } else if (outDir !== path.resolve(model.baseDir)) {
    const locations = new Set<string>();
    for (const t of walkTensors(model.proto.graph!)) if (isExternal(t)) locations.add(externalRef(t, model.file).location);
    for (const loc of [...locations].sort()) targets.push(path.join(outDir, loc));
  }
  return targets;
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
      const src = externalPath(model, { location: loc, offset: 0, length: -1 });
      const dst = resolveInside(outDir, loc, file, { purpose: 'write' });
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
  if (realPath(src) === realPath(dst)) return;
  const tmp = path.join(path.dirname(dst), `.qtool-tmp-${process.pid}-${randomBytes(4).toString('hex')}-${path.basename(dst)}`);
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

/**
 * Model + external data as a pair that a reader never sees mixed: the data goes to a temp file,
 * then under a name no existing model references (`<model>.data`, or `<model>.<sha8>.data` when
 * that name holds other bytes), then the model is renamed into place last, then the data the
 * replaced model referenced is removed. A kill at any point leaves either the old pair or the new
 * one, each complete. Data files of the source model are never replaced or removed.
 */
function saveWithExternalData(model: Model, file: string, opts: SaveOptions): SaveResult {
  const outDir = path.dirname(path.resolve(file));
  const preferredName = opts.externalDataName ?? `${path.basename(file)}.data`;
  const preferred = resolveInside(outDir, preferredName, file, { purpose: 'write' });
  const sourceFiles = new Set(sourceDataFiles(model));
  const oldData = referencedDataFiles(file, outDir);
  const threshold = opts.externalThreshold ?? 1024;
  const tmpData = path.join(outDir, `.qtool-tmp-${process.pid}-${randomBytes(4).toString('hex')}-${path.basename(preferred)}`);
  PENDING_TEMP_FILES.add(tmpData);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmpData, 'w');
    const hash = createHash('sha256');
    let offset = 0;
    const moved = new Map<TensorProto, TensorProto>();
    const copies = new Set<TensorProto>();
    const dataFd = fd;
    const append = (bytes: Uint8Array) => {
      writeAllSync(dataFd, bytes);
      hash.update(bytes);
    };
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
        append(new Uint8Array(pad));
        offset += pad;
      }
      let length: number;
      if (external) {
        length = copyExternalBytes(model, t, append);
      } else {
        length = t.rawData.length;
        append(t.rawData);
      }
      const copy = Object.assign(Object.create(Object.getPrototypeOf(t)) as TensorProto, t);
      copy.rawData = new Uint8Array(0);
      copy.dataLocation = DataLocation.EXTERNAL;
      copy.externalData = [
        create(StringStringEntryProtoSchema, { key: 'location', value: preferredName }),
        create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
      ];
      offset += length;
      moved.set(t, copy);
      copies.add(copy);
      return copy;
    };
    let pieces = encodeToPieces(ModelProtoSchema, model.proto, { bigBytes: 64 * 1024, rewrite: rewrite as never });
    if (pieces.length > PROTOBUF_LIMIT_BYTES) {
      throw new ModelError('E_MODEL_TOO_LARGE', `graph without its tensors is still ${pieces.length} bytes; protobuf cannot hold 2 GiB or more`, { file });
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    const digest = hash.digest('hex');
    // Where the new data may go without a reader of the old pair seeing it.
    let dataName = preferredName;
    let dataPath = preferred;
    let keepExisting = false;
    if (fs.existsSync(preferred)) {
      if (sameContent(preferred, offset, digest)) keepExisting = true;
      else {
        dataName = hashedName(preferredName, digest);
        dataPath = resolveInside(outDir, dataName, file, { purpose: 'write' });
        if (sourceFiles.has(realPath(dataPath))) throw new InputError('E_OUTPUT_IS_INPUT', `external data file ${dataPath} is a data file of the model being saved`, { file });
        keepExisting = fs.existsSync(dataPath) && sameContent(dataPath, offset, digest);
      }
    }
    if (dataName !== preferredName) {
      for (const c of copies) c.externalData[0] = create(StringStringEntryProtoSchema, { key: 'location', value: dataName });
      pieces = encodeToPieces(ModelProtoSchema, model.proto, { bigBytes: 64 * 1024, rewrite: rewrite as never });
    }
    if (keepExisting) fs.rmSync(tmpData, { force: true });
    else fs.renameSync(tmpData, dataPath);
    writeFileAtomic(file, coalesce(pieces.list));
    // The model now references dataPath only: the replaced model's data can go.
    const kept = realPath(dataPath);
    for (const old of oldData) if (old !== kept && !sourceFiles.has(old) && isOwnDataName(path.basename(old), preferredName)) fs.rmSync(old, { force: true });
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

function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Real paths of the external data files the source model reads (never replaced by its save). */
function sourceDataFiles(model: Model): string[] {
  const out: string[] = [];
  for (const t of walkTensors(model.proto.graph!)) {
    if (!isExternal(t)) continue;
    try {
      out.push(realPath(externalPath(model, externalRef(t, model.file))));
    } catch {
      // a bad location fails where the bytes are read
    }
  }
  return out;
}

/** `w.onnx.data` → `w.onnx.1a2b3c4d.data`; `weights.bin` → `weights.1a2b3c4d.bin`. */
function hashedName(name: string, digest: string): string {
  const ext = path.extname(name);
  const stem = ext ? name.slice(0, -ext.length) : name;
  return `${stem}.${digest.slice(0, 8)}${ext}`;
}

function isOwnDataName(base: string, preferredName: string): boolean {
  const pref = path.basename(preferredName);
  if (base === pref) return true;
  const ext = path.extname(pref);
  const stem = ext ? pref.slice(0, -ext.length) : pref;
  return base.length === stem.length + 9 + ext.length && base.startsWith(`${stem}.`) && base.endsWith(ext) && /^[0-9a-f]{8}$/.test(base.slice(stem.length + 1, stem.length + 9));
}

function sameContent(p: string, size: number, digest: string): boolean {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size !== size) return false;
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  try {
    const buf = (copyBuffer ??= Buffer.allocUnsafe(COPY_CHUNK_BYTES));
    for (let pos = 0; pos < size; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (n === 0) return false;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex') === digest;
}

/** External data files (real paths, inside outDir) that the model currently at `file` references; [] when none or unreadable. */
function referencedDataFiles(file: string, outDir: string): string[] {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size > 256 * 1024 * 1024) return [];
  try {
    const old = loadModel(file, { checkExternalData: false });
    const out = new Set<string>();
    for (const t of walkTensors(old.proto.graph!)) {
      if (!isExternal(t)) continue;
      const p = resolveInside(outDir, externalRef(t, file).location, file);
      if (fs.existsSync(p)) out.add(realPath(p));
    }
    return [...out];
  } catch {
    return [];
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
function copyExternalBytes(model: Model, t: TensorProto, append: (bytes: Uint8Array) => void): number {
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
      append(buf.subarray(0, n));
      done += n;
    }
    return length;
  } finally {
    fs.closeSync(fd);
  }
}
