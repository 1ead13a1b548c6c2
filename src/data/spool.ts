/**
 * Data from a pipe (`--data /dev/stdin`, `<(…)`, a named FIFO): the readers seek (headers, .npz
 * central directory, stacked arrays), so the stream is first copied, sequentially, into a private
 * temp file; every format then works unchanged. A FIFO nobody writes to fails after PIPE_WAIT_MS
 * instead of hanging; more than MAX_PIPE_BYTES fails too.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_PIPE_BYTES, PIPE_WAIT_MS, makeOwnTempDir, openPipe, pipeTimeoutError, pipeTooLargeError, readPipeChunk, removeOwnTempDir, type PipeReadOptions } from '../files.js';

const spooled = new Set<string>();

/** The fd behind `/dev/stdin`, `/dev/fd/N` or `/proc/self/fd/N` (a socket cannot be reopened by path). */
export function inheritedFd(source: string): number | undefined {
  if (source === '-' || source === '/dev/stdin') return 0;
  const m = /^\/(?:dev|proc\/self)\/fd\/(\d+)$/.exec(source);
  return m ? Number(m[1]) : undefined;
}

/** Read an inherited socket fd (Node hands children a socketpair as stdin) through a stream, with the same wait and cap. */
async function readSocketInto(fd: number, source: string, out: number, waitMs: number, maxBytes: number): Promise<number> {
  const sock = new net.Socket({ fd, readable: true, writable: false });
  let total = 0;
  const timer = setTimeout(() => {
    if (total === 0) sock.destroy(pipeTimeoutError(source, waitMs));
  }, waitMs);
  try {
    for await (const chunk of sock as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw pipeTooLargeError(source, maxBytes);
      for (let off = 0; off < chunk.length; ) off += fs.writeSync(out, chunk, off, chunk.length - off);
    }
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
  return total;
}
let exitHookInstalled = false;

/** Copy the pipe `source` into a temp file (removed at process exit, on Ctrl-C, or by a later sweep) and return its path. */
export async function spoolPipe(source: string, opts: PipeReadOptions = {}): Promise<string> {
  const waitMs = opts.waitMs ?? PIPE_WAIT_MS;
  const maxBytes = opts.maxBytes ?? MAX_PIPE_BYTES;
  const dir = makeOwnTempDir('pipe');
  spooled.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const d of spooled) removeOwnTempDir(d);
    });
  }
  const target = path.join(dir, path.basename(source).replace(/[^\w.-]/g, '_') || 'data');
  const inherited = inheritedFd(source);
  if (inherited !== undefined && fs.fstatSync(inherited).isSocket()) {
    const out = fs.openSync(target, 'w');
    try {
      await readSocketInto(inherited, source, out, waitMs, maxBytes);
    } catch (err) {
      spooled.delete(dir);
      removeOwnTempDir(dir);
      throw err;
    } finally {
      fs.closeSync(out);
    }
    return target;
  }
  const fd = openPipe(source);
  const out = fs.openSync(target, 'w');
  const buf = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  const start = Date.now();
  try {
    for (;;) {
      const n = readPipeChunk(fd, buf, source);
      if (n > 0) {
        total += n;
        if (total > maxBytes) throw pipeTooLargeError(source, maxBytes);
        for (let off = 0; off < n; ) off += fs.writeSync(out, buf, off, n - off);
        continue;
      }
      if (n === 0 && total > 0) break;
      if (n === 0 && Date.now() - start > waitMs) throw pipeTimeoutError(source, waitMs);
      // No writer yet (0) or no data yet (-1): wait without blocking the event loop (Ctrl-C stays live).
      await sleep(n === 0 ? 20 : 2);
    }
  } catch (err) {
    fs.closeSync(out);
    spooled.delete(dir);
    removeOwnTempDir(dir);
    throw err;
  } finally {
    fs.closeSync(fd);
  }
  fs.closeSync(out);
  return target;
}
