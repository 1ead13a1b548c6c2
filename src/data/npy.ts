/**
 * NumPy .npy files (format versions 1, 2 and 3): little-endian, C order.
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import * as fs from 'node:fs';
import { InputError } from '../errors.js';
import { describeFsError, writeFileAtomic } from '../files.js';
import { DTYPES, formatShape, makeTensor, numElements, type DType, type DTypeMap, type Tensor } from '../tensor/index.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** numpy type code (without the byte-order character) → qtool dtype. */
const NPY_CODES: Readonly<Record<string, DType>> = {
  f4: 'float32',
  f2: 'float16',
  f8: 'float64',
  i8: 'int64',
  i4: 'int32',
  i2: 'int16',
  i1: 'int8',
  u1: 'uint8',
  u2: 'uint16',
  u4: 'uint32',
  u8: 'uint64',
  b1: 'bool',
};

const DTYPE_CODES: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(NPY_CODES).map(([code, dt]) => [dt, code]));

/** The parsed header of an .npy array: what it holds and where its data starts. */
export interface NpyHeader {
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Byte offset of the first element, from the start of the .npy bytes. */
  readonly dataOffset: number;
  /** Bytes of element data (elements × item size). */
  readonly dataBytes: number;
}

/** Bytes needed to be sure the header can be parsed (v1 headers are < 64 KiB; v2/v3 say their length). */
export const NPY_PREAMBLE_BYTES = 12;

/**
 * Parse an .npy header from the first bytes of the file. `head` must hold at least the whole header;
 * if it is too short, the error says the file is truncated. `file` names the file in messages.
 */
export function parseNpyHeader(head: Uint8Array, file: string, totalBytes?: number): NpyHeader {
  for (let i = 0; i < MAGIC.length; i++) {
    if (head[i] !== MAGIC[i]) {
      throw new InputError('E_DATA_FORMAT', head.length < MAGIC.length ? 'truncated .npy file: no header' : 'not an .npy file: the magic string \\x93NUMPY is missing', { file });
    }
  }
  if (head.length < 10) throw new InputError('E_DATA_FORMAT', 'truncated .npy file: header cut short', { file });
  const major = head[6];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = head[8] | (head[9] << 8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (head.length < 12) throw new InputError('E_DATA_FORMAT', 'truncated .npy file: header cut short', { file });
    headerLen = (head[8] | (head[9] << 8) | (head[10] << 16)) + head[11] * 0x1000000;
    start = 12;
  } else {
    throw new InputError('E_DATA_FORMAT', `unsupported .npy format version ${major}.${head[7]}: expected 1.0, 2.0 or 3.0`, { file });
  }
  if (head.length < start + headerLen) throw new InputError('E_DATA_FORMAT', `truncated .npy file: header needs ${start + headerLen} bytes, got ${head.length}`, { file });
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(head.subarray(start, start + headerLen));
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new InputError('E_DATA_FORMAT', `invalid .npy header: expected descr, fortran_order and shape, got ${JSON.stringify(text.trim().slice(0, 200))}`, { file });
  }
  if (fortran === 'True') throw new InputError('E_DATA_FORMAT', 'array is in Fortran order: expected C order (save it with np.ascontiguousarray)', { file });
  const order = descr[0];
  const code = order === '<' || order === '>' || order === '|' || order === '=' ? descr.slice(1) : descr;
  const dtype = NPY_CODES[code];
  if (order === '>' && code !== 'i1' && code !== 'u1' && code !== 'b1') {
    throw new InputError('E_DATA_FORMAT', `array is big-endian (${descr}): expected little-endian (convert with arr.astype(arr.dtype.newbyteorder('<')))`, { file });
  }
  if (!dtype) {
    throw new InputError('E_DATA_DTYPE', `unsupported array dtype "${descr}": expected one of ${Object.keys(NPY_CODES).map((c) => `<${c}`).join(', ')}`, { file });
  }
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new InputError('E_DATA_FORMAT', `invalid .npy shape (${shapeText})`, { file });
  const dataOffset = start + headerLen;
  const dataBytes = numElements(dims) * (DTYPES[dtype].bits / 8);
  if (totalBytes !== undefined && totalBytes < dataOffset + dataBytes) {
    throw new InputError('E_DATA_FORMAT', `truncated .npy file: shape (${formatShape(dims)}) ${descr} needs ${dataOffset + dataBytes} bytes, got ${totalBytes}`, { file });
  }
  return { dtype, dims, dataOffset, dataBytes };
}

/** A typed array of `dtype` over a copy of `bytes` (little-endian host assumed, as on every platform Node runs on). */
export function typedFromBytes<T extends DType>(dtype: T, bytes: Uint8Array): DTypeMap[T] {
  const info = DTYPES[dtype];
  const item = info.bits / 8;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new (info.ctor as unknown as new (b: ArrayBuffer, o: number, n: number) => DTypeMap[T])(copy.buffer, 0, bytes.length / item);
}

/** Read a whole .npy file into a tensor. */
export function readNpy(file: string): Tensor {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read data file'), { file, cause: err });
  }
  return decodeNpy(bytes, file);
}

/** Class or token ids from an .npy file: an integer array (E_LABELS for float or bool data). */
export function readLabels(file: string): Tensor {
  const t = readNpy(file);
  if (t.dtype.startsWith('float') || t.dtype === 'bfloat16' || t.dtype === 'bool') throw new InputError('E_LABELS', `labels: expected an integer array (class ids), got ${t.dtype}`, { file });
  return t;
}

/** Decode .npy bytes into a tensor. */
export function decodeNpy(bytes: Uint8Array, file: string): Tensor {
  const h = parseNpyHeader(bytes, file, bytes.length);
  return makeTensor(h.dtype, h.dims, typedFromBytes(h.dtype, bytes.subarray(h.dataOffset, h.dataOffset + h.dataBytes)));
}

/** Encode a tensor as .npy bytes (version 1.0, or 2.0 for a header over 64 KiB), header padded to 64 bytes. */
export function encodeNpy(t: Tensor): Uint8Array {
  const code = DTYPE_CODES[t.dtype];
  if (!code) throw new InputError('E_DATA_DTYPE', `cannot write a ${t.dtype} tensor as .npy: expected one of ${Object.values(NPY_CODES).join(', ')}`);
  const descr = code === 'i1' || code === 'u1' || code === 'b1' ? `|${code}` : `<${code}`;
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  let pre = 10;
  let total = pre + dict.length + 1;
  if (total % 64) dict += ' '.repeat(64 - (total % 64));
  if (dict.length + 1 > 0xffff) {
    pre = 12;
    dict = dict.trimEnd();
    total = pre + dict.length + 1;
    if (total % 64) dict += ' '.repeat(64 - (total % 64));
  }
  dict += '\n';
  const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(pre + dict.length + data.length);
  out.set(MAGIC, 0);
  out[6] = pre === 10 ? 1 : 2;
  out[7] = 0;
  if (pre === 10) {
    out[8] = dict.length & 0xff;
    out[9] = dict.length >> 8;
  } else {
    new DataView(out.buffer).setUint32(8, dict.length, true);
  }
  for (let i = 0; i < dict.length; i++) out[pre + i] = dict.charCodeAt(i);
  out.set(data, pre + dict.length);
  return out;
}

/** Write a tensor as an .npy file (atomically). */
export function writeNpy(file: string, t: Tensor): void {
  writeFileAtomic(file, encodeNpy(t));
}
