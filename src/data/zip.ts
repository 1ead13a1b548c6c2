/**
 * A small zip reader/writer for .npz files: central directory (with ZIP64), stored and deflated entries.
 * Entries are read lazily: a stored entry by positioned reads, a deflated one through a streaming inflater.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { InputError } from '../errors.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  /** Offset of the local file header. */
  readonly headerOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CDIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

function readAt(fd: number, position: number, length: number, file: string): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new InputError('E_DATA_FORMAT', `truncated zip archive: expected ${length} bytes at offset ${position}, got ${got}`, { file });
    got += n;
  }
  return buf;
}

function corrupt(why: string, file: string): InputError {
  return new InputError('E_DATA_FORMAT', `corrupt zip archive: ${why}`, { file });
}

/** Largest central directory read (64 MiB: over a million entries). */
const MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024;

/** List the entries of a zip archive from its central directory; every offset and length is bounds-checked. */
export function readZipDirectory(fd: number, file: string): ZipEntry[] {
  const size = fs.fstatSync(fd).size;
  if (size < 22) throw new InputError('E_DATA_FORMAT', 'not a zip archive (.npz): file too short', { file });
  const tailLen = Math.min(size, 22 + 0xffff);
  const tail = readAt(fd, size - tailLen, tailLen, file);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new InputError('E_DATA_FORMAT', 'not a zip archive (.npz) or truncated: end of central directory not found', { file });
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  const eocdPos = size - tailLen + eocd;
  if ((count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && eocdPos >= 20) {
    const loc = readAt(fd, eocdPos - 20, 20, file);
    if (loc.readUInt32LE(0) === ZIP64_LOCATOR_SIG) {
      const z64At = Number(loc.readBigUInt64LE(8));
      if (!(z64At + 56 <= size)) throw corrupt(`ZIP64 end of central directory at offset ${z64At} is outside the ${size}-byte file`, file);
      const z64 = readAt(fd, z64At, 56, file);
      if (z64.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw new InputError('E_DATA_FORMAT', 'corrupt zip archive: bad ZIP64 end of central directory', { file });
      count = Number(z64.readBigUInt64LE(32));
      cdSize = Number(z64.readBigUInt64LE(40));
      cdOffset = Number(z64.readBigUInt64LE(48));
    }
  }
  if (!Number.isSafeInteger(count) || count > size / 46) throw corrupt(`central directory claims ${count} entries, the file has room for at most ${Math.floor(size / 46)}`, file);
  if (cdOffset + cdSize > size) throw new InputError('E_DATA_FORMAT', `truncated zip archive: central directory ends at ${cdOffset + cdSize}, file has ${size} bytes`, { file });
  if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES) throw corrupt(`central directory of ${cdSize} bytes: expected at most ${MAX_CENTRAL_DIRECTORY_BYTES}`, file);
  const cd = readAt(fd, cdOffset, cdSize, file);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CDIR_SIG) throw new InputError('E_DATA_FORMAT', 'corrupt zip archive: bad central directory entry', { file });
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc32 = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressed = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let headerOffset = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw corrupt(`central directory entry ${k} (name, extra field and comment of ${nameLen + extraLen + commentLen} bytes) overruns the directory`, file);
    const name = cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
    // ZIP64 extended information: the fields that overflowed, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (e + 4 + len > extraEnd) throw corrupt(`extra field 0x${id.toString(16).padStart(4, '0')} of entry "${name}" (${len} bytes) overruns its ${extraLen}-byte extra area`, file);
      if (id === 0x0001) {
        let q = e + 4;
        const end = q + len;
        const next = (what: string): number => {
          if (q + 8 > end) throw corrupt(`ZIP64 extra field of entry "${name}" is ${len} bytes: too short for its ${what}`, file);
          const v = Number(cd.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (uncompressed === 0xffffffff) uncompressed = next('size');
        if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
        if (headerOffset === 0xffffffff) headerOffset = next('header offset');
      }
      e += 4 + len;
    }
    if (!(headerOffset + 30 <= size) || !(compressedSize <= size)) {
      throw corrupt(`entry "${name}" claims ${compressedSize} bytes at offset ${headerOffset}, outside the ${size}-byte file`, file);
    }
    if (!Number.isSafeInteger(uncompressed)) throw corrupt(`entry "${name}" claims a size of ${uncompressed} bytes`, file);
    entries.push({ name, method, compressedSize, size: uncompressed, crc32, headerOffset });
    p = extraEnd + commentLen;
  }
  return entries;
}

/** Offset of an entry's data (after its local header). */
export function entryDataOffset(fd: number, entry: ZipEntry, file: string): number {
  const h = readAt(fd, entry.headerOffset, 30, file);
  if (h.readUInt32LE(0) !== LOCAL_SIG) throw new InputError('E_DATA_FORMAT', `corrupt zip archive: bad local header for "${entry.name}"`, { file });
  return entry.headerOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
}

/**
 * Sequential reader over bytes: `read(n)` returns exactly n bytes (or throws "truncated").
 * Backed by positioned reads (stored data) or a streaming inflater (deflated data).
 */
export interface ByteReader {
  read(n: number): Promise<Uint8Array>;
  close(): void;
}

/** Positioned reads from `fd` starting at `offset`, at most `limit` bytes. The caller owns fd. */
export function positionalReader(fd: number, offset: number, limit: number, file: string): ByteReader {
  let pos = offset;
  const end = offset + limit;
  return {
    async read(n) {
      if (pos + n > end) throw new InputError('E_DATA_FORMAT', `truncated data: expected ${n} more bytes at offset ${pos}, only ${Math.max(0, end - pos)} left`, { file });
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const k = fs.readSync(fd, buf, got, Math.min(n - got, 0x40000000), pos + got);
        if (k === 0) throw new InputError('E_DATA_FORMAT', `truncated data: file ends at offset ${pos + got}, expected ${n - got} more bytes`, { file });
        got += k;
      }
      pos += n;
      return buf;
    },
    close() {},
  };
}

/** Stream-inflate a deflated zip entry, handing out exactly the bytes asked for. */
export function inflatingReader(path: string, dataOffset: number, compressedSize: number, file = path): ByteReader {
  let stream: zlib.InflateRaw | undefined;
  if (compressedSize > 0) {
    const src = fs.createReadStream(path, { start: dataOffset, end: dataOffset + compressedSize - 1, highWaterMark: 1 << 20 });
    const inflate = zlib.createInflateRaw({ chunkSize: 1 << 18 });
    src.on('error', (err) => inflate.destroy(err));
    inflate.on('close', () => src.destroy());
    stream = src.pipe(inflate);
  }
  const it = stream?.[Symbol.asyncIterator]();
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let ended = !it;
  return {
    async read(n) {
      while (pendingBytes < n && !ended) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it!.next();
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code && !code.startsWith('Z_')) throw new InputError('E_READ', `cannot read data file (${code})`, { file, cause: err });
          throw new InputError('E_DATA_FORMAT', `corrupt deflate data in .npz (${(err as Error).message})`, { file, cause: err });
        }
        if (r.done) ended = true;
        else {
          pending.push(r.value);
          pendingBytes += r.value.length;
        }
      }
      if (pendingBytes < n) throw new InputError('E_DATA_FORMAT', `truncated data: expected ${n} more bytes, only ${pendingBytes} left`, { file });
      const out = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const head = pending[0];
        const take = Math.min(head.length, n - got);
        out.set(head.subarray(0, take), got);
        got += take;
        if (take === head.length) pending.shift();
        else pending[0] = head.subarray(take);
      }
      pendingBytes -= n;
      return out;
    },
    close() {
      stream?.destroy();
    },
  };
}

/** The first up-to-`n` bytes of an entry's uncompressed data (for parsing headers). */
export function readEntryPrefix(fd: number, entry: ZipEntry, n: number, file: string): Uint8Array {
  const off = entryDataOffset(fd, entry, file);
  if (entry.method === 0) return readAt(fd, off, Math.min(n, entry.size), file);
  if (entry.method !== 8) throw new InputError('E_DATA_FORMAT', `zip entry "${entry.name}" uses compression method ${entry.method}: expected stored (0) or deflate (8)`, { file });
  // Inflate a growing prefix until n bytes come out (or the entry ends).
  for (let take = Math.min(entry.compressedSize, 4096); ; take = Math.min(entry.compressedSize, take * 4)) {
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(readAt(fd, off, take, file), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (err) {
      throw new InputError('E_DATA_FORMAT', `corrupt deflate data in zip entry "${entry.name}" (${(err as Error).message})`, { file, cause: err });
    }
    if (out.length >= n || take >= entry.compressedSize) return out.subarray(0, n);
  }
}

/** The whole uncompressed data of an entry (synchronous; for small archives read at once). */
export function readEntry(fd: number, entry: ZipEntry, file: string): Uint8Array {
  const off = entryDataOffset(fd, entry, file);
  const body = readAt(fd, off, entry.compressedSize, file);
  if (entry.method === 0) return body;
  if (entry.method !== 8) throw new InputError('E_DATA_FORMAT', `zip entry "${entry.name}" uses compression method ${entry.method}: expected stored (0) or deflate (8)`, { file });
  try {
    // The declared size bounds the output: a deflate bomb fails here instead of filling memory.
    return zlib.inflateRawSync(body, { maxOutputLength: Math.max(1, entry.size) });
  } catch (err) {
    throw new InputError('E_DATA_FORMAT', `corrupt deflate data in zip entry "${entry.name}" (${(err as Error).message})`, { file, cause: err });
  }
}

/** Build a zip archive (stored or deflated entries, no ZIP64). For writing .npz files. */
export function encodeZip(files: readonly { name: string; data: Uint8Array }[], compress = false): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const body = compress ? zlib.deflateRawSync(f.data) : f.data;
    const crc = zlib.crc32(f.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_SIG, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(compress ? 8 : 0, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01: deterministic bytes
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(CDIR_SIG, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(compress ? 8 : 0, 10);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(f.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    chunks.push(local, name, body);
    offset += 30 + name.length + body.length;
  }
  const cdSize = central.reduce((s, b) => s + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(EOCD_SIG, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  return [...chunks, ...central, eocd];
}
