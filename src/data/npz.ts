/**
 * .npz archives (numpy.savez / savez_compressed) and lazily read arrays in .npy/.npz files.
 */
import * as fs from 'node:fs';
import { InputError } from '../errors.js';
import { describeFsError, writeFileAtomic } from '../files.js';
import { makeTensor, type Tensor } from '../tensor/index.js';
import { NPY_PREAMBLE_BYTES, decodeNpy, encodeNpy, parseNpyHeader, typedFromBytes, type NpyHeader } from './npy.js';
import { encodeZip, entryDataOffset, inflatingReader, positionalReader, readEntry, readEntryPrefix, readZipDirectory, type ByteReader, type ZipEntry } from './zip.js';

/** One array stored in an .npy file or an .npz entry, readable lazily from the start of its data. */
export interface StoredArray {
  /** Array name (the .npz entry name without ".npy"; the file name for an .npy file). */
  readonly name: string;
  readonly file: string;
  readonly header: NpyHeader;
  /** A reader positioned at the first element; close it when done. */
  open(): ByteReader;
}

function openFd(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read data file'), { file, cause: err });
  }
}

function readHead(fd: number, file: string, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Read an .npy header via positioned reads, growing the read for long (v2/v3) headers. */
function readNpyHeaderAt(read: (n: number) => Uint8Array, file: string, totalBytes: number): NpyHeader {
  let head = read(4096);
  if (head.length >= NPY_PREAMBLE_BYTES) {
    const need = head[6] === 1 ? 10 + (head[8] | (head[9] << 8)) : 12 + (head[8] | (head[9] << 8) | (head[10] << 16)) + head[11] * 0x1000000;
    if (need > head.length && need < 0x7fffffff) head = read(need);
  }
  return parseNpyHeader(head, file, totalBytes);
}

/** The array in an .npy file, with its header parsed (the data is not read). */
export function npyArray(file: string): StoredArray {
  const fd = openFd(file);
  let header: NpyHeader;
  try {
    const size = fs.fstatSync(fd).size;
    if (fs.fstatSync(fd).isDirectory()) throw new InputError('E_READ', 'is a directory, expected a data file', { file });
    header = readNpyHeaderAt((n) => readHead(fd, file, 0, n), file, size);
  } finally {
    fs.closeSync(fd);
  }
  const name = file.replace(/^.*[\\/]/, '').replace(/\.npy$/i, '');
  return {
    name,
    file,
    header,
    open() {
      const fd2 = openFd(file);
      const r = positionalReader(fd2, header.dataOffset, header.dataBytes, file);
      return { read: (n) => r.read(n), close: () => fs.closeSync(fd2) };
    },
  };
}

/** The arrays of an .npz archive, headers parsed, data not read. */
export function npzArrays(file: string): StoredArray[] {
  const fd = openFd(file);
  try {
    if (fs.fstatSync(fd).isDirectory()) throw new InputError('E_READ', 'is a directory, expected a data file', { file });
    const entries = readZipDirectory(fd, file).filter((e) => !e.name.endsWith('/'));
    return entries.map((entry) => {
      const label = `${file}[${entry.name}]`;
      const header = readNpyHeaderAt((n) => readEntryPrefix(fd, entry, n, label), label, entry.size);
      return storedEntry(file, entry, header, entryDataOffset(fd, entry, file));
    });
  } finally {
    fs.closeSync(fd);
  }
}

function storedEntry(file: string, entry: ZipEntry, header: NpyHeader, dataOffset: number): StoredArray {
  const label = `${file}[${entry.name}]`;
  return {
    name: entry.name.replace(/\.npy$/i, ''),
    file,
    header,
    open() {
      if (entry.method === 0) {
        const fd = openFd(file);
        const r = positionalReader(fd, dataOffset + header.dataOffset, header.dataBytes, label);
        return { read: (n) => r.read(n), close: () => fs.closeSync(fd) };
      }
      const r = inflatingReader(file, dataOffset, entry.compressedSize, label);
      let skipped = false;
      return {
        async read(n) {
          if (!skipped) {
            skipped = true;
            await r.read(header.dataOffset);
          }
          return r.read(n);
        },
        close: () => r.close(),
      };
    },
  };
}

/** Read a whole stored array. */
export async function readStoredArray(a: StoredArray): Promise<Tensor> {
  const r = a.open();
  try {
    const bytes = await r.read(a.header.dataBytes);
    return makeTensor(a.header.dtype, a.header.dims, typedFromBytes(a.header.dtype, bytes));
  } finally {
    r.close();
  }
}

/** Read every array of an .npz archive (entry names without ".npy"). */
export function readNpz(file: string): Record<string, Tensor> {
  const fd = openFd(file);
  try {
    if (fs.fstatSync(fd).isDirectory()) throw new InputError('E_READ', 'is a directory, expected a data file', { file });
    const out: Record<string, Tensor> = {};
    for (const entry of readZipDirectory(fd, file)) {
      if (entry.name.endsWith('/')) continue;
      out[entry.name.replace(/\.npy$/i, '')] = decodeNpy(readEntry(fd, entry, file), `${file}[${entry.name}]`);
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Write tensors as an .npz archive (stored, or deflated with `compress`), atomically and deterministically. */
export function writeNpz(file: string, arrays: Readonly<Record<string, Tensor>>, opts: { compress?: boolean } = {}): void {
  const files = Object.entries(arrays).map(([name, t]) => ({ name: `${name}.npy`, data: encodeNpy(t) }));
  writeFileAtomic(file, encodeZip(files, opts.compress ?? false));
}
