import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import {
  CACHE_ENTRY_FILE,
  cacheKey,
  cacheKeyInput,
  entryDir,
  hashContent,
  lookupCache,
  openCache,
  restoreFromCache,
  storeInCache,
  sweepOwnedTemp,
} from '../../src/pipeline/batch-cache.js';
import { FMNIST, ROOT } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
const V = { qtool: '0.1.0', onnxruntime: '1.30.0' };
beforeAll(() => {
  dir = makeTempDir('qtool-cache-');
  for (const sub of ['a', 'b']) {
    fs.mkdirSync(path.join(dir, sub));
    fs.copyFileSync(FMNIST.mlp, path.join(dir, sub, 'm.onnx'));
    fs.writeFileSync(path.join(dir, sub, 'x.npy'), 'calibration bytes');
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const job = (sub: string, recipe: Record<string, unknown> = {}, gate?: Record<string, unknown>) => ({
  model: path.join(dir, sub, 'm.onnx'),
  output: path.join(dir, sub, 'out', 'm.q.onnx'),
  recipe: { bits: 8, mode: 'static', data: path.join(dir, sub, 'x.npy'), ...recipe },
  gate,
});
const key = (j: ReturnType<typeof job>, v = V) => cacheKey(cacheKeyInput(j, v));

describe('cache key', () => {
  it('names content, not paths: the same bytes elsewhere give the same key', () => {
    expect(key(job('a'))).toBe(key(job('b')));
    expect(key(job('a'))).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKeyInput(job('a'), V).recipe.data).toEqual({ sha256: hashContent(path.join(dir, 'a', 'x.npy')) });
  });

  it('changes with the model bytes, the data bytes, the recipe, the gate and either version', () => {
    const base = key(job('a'));
    fs.writeFileSync(path.join(dir, 'b', 'x.npy'), 'other calibration bytes');
    expect(key(job('b'))).not.toBe(base);
    fs.writeFileSync(path.join(dir, 'b', 'x.npy'), 'calibration bytes');
    expect(key(job('b'))).toBe(base);
    expect(key(job('a', { bits: 4 }))).not.toBe(base);
    expect(key(job('a', {}, { data: path.join(dir, 'a', 'x.npy') }))).not.toBe(base);
    expect(key(job('a'), { ...V, qtool: '0.2.0' })).not.toBe(base);
    expect(key(job('a'), { ...V, onnxruntime: '1.31.0' })).not.toBe(base);
    fs.appendFileSync(path.join(dir, 'b', 'm.onnx'), Buffer.from([0]));
    expect(key(job('b'))).not.toBe(base);
    fs.copyFileSync(FMNIST.mlp, path.join(dir, 'b', 'm.onnx'));
    // The output's name matters only when the model names its external data file after it.
    expect(key({ ...job('a'), output: '/elsewhere/other.onnx' })).toBe(base);
    const ext = { ...job('a', { externalData: true }) };
    expect(key({ ...ext, output: '/elsewhere/other.onnx' })).not.toBe(key(ext));
  });

  it('covers the bytes of the external data a model names', () => {
    const d = path.join(dir, 'ext');
    fs.mkdirSync(d);
    saveModel(loadModel(FMNIST.mlp), path.join(d, 'm.onnx'), { externalData: true });
    const j = { model: path.join(d, 'm.onnx'), output: path.join(d, 'q.onnx'), recipe: { mode: 'dynamic' } };
    const before = cacheKeyInput(j, V);
    expect(before.model.externalData).toEqual([{ location: 'm.onnx.data', sha256: hashContent(path.join(d, 'm.onnx.data')) }]);
    const data = path.join(d, 'm.onnx.data');
    const bytes = fs.readFileSync(data);
    bytes[100] ^= 1;
    fs.writeFileSync(data, bytes);
    expect(cacheKey(cacheKeyInput(j, V))).not.toBe(cacheKey(before));
  });
});

describe('store, lookup, restore', () => {
  it('a stored entry restores byte-identical files under the job’s names', () => {
    const cache = path.join(dir, 'cache1');
    openCache(cache);
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'out.onnx'), 'model bytes');
    fs.writeFileSync(path.join(src, 'out.onnx.data'), 'tensor bytes');
    fs.mkdirSync(path.join(src, 'w'));
    fs.writeFileSync(path.join(src, 'w', 'weights.bin'), 'more tensor bytes');
    const k = 'ab'.repeat(32);
    expect(lookupCache(cache, k)).toBeUndefined();
    expect(storeInCache(cache, k, [path.join(src, 'out.onnx'), path.join(src, 'out.onnx.data'), path.join(src, 'w', 'weights.bin')], src, { outputBytes: 23 })).toBe('stored');
    expect(storeInCache(cache, k, [path.join(src, 'out.onnx')], src, { outputBytes: 1 })).toBe('exists');
    const entry = lookupCache(cache, k)!;
    expect(entry.files.map((f) => f.name)).toEqual(['model.onnx', 'out.onnx.data', 'w/weights.bin']);
    expect(entry.outcome).toEqual({ outputBytes: 23 });
    const target = path.join(dir, 'target1');
    fs.mkdirSync(target);
    expect(restoreFromCache(cache, entry, target, 'job.onnx')).toEqual([path.join(target, 'job.onnx'), path.join(target, 'out.onnx.data'), path.join(target, 'w', 'weights.bin')]);
    expect(fs.readFileSync(path.join(target, 'w', 'weights.bin'), 'utf8')).toBe('more tensor bytes');
    expect(fs.readFileSync(path.join(target, 'job.onnx'), 'utf8')).toBe('model bytes');
    expect(fs.readFileSync(path.join(target, 'out.onnx.data'), 'utf8')).toBe('tensor bytes');
    expect(fs.readdirSync(path.join(cache, '.tmp'))).toEqual([]);
  });

  it('a damaged entry is never served: it is discarded and the lookup misses', () => {
    const cache = path.join(dir, 'cache2');
    openCache(cache);
    const f = path.join(dir, 'payload.bin');
    fs.writeFileSync(f, Buffer.alloc(3 << 20, 7));
    const k = 'cd'.repeat(32);
    storeInCache(cache, k, [f], dir, {});
    const stored = path.join(entryDir(cache, k), 'model.onnx');
    // Same size, one byte flipped (bit rot); then a truncated file (a copy cut short by hand).
    const bytes = fs.readFileSync(stored);
    bytes[2 << 20] = 8;
    fs.writeFileSync(stored, bytes);
    const target = path.join(dir, 'target2');
    fs.mkdirSync(target);
    expect(restoreFromCache(cache, lookupCache(cache, k)!, target, 'out.onnx')).toBeUndefined();
    expect(fs.readdirSync(target)).toEqual([]);
    expect(lookupCache(cache, k)).toBeUndefined();
    storeInCache(cache, k, [f], dir, {});
    fs.truncateSync(path.join(entryDir(cache, k), 'model.onnx'), 1000);
    expect(restoreFromCache(cache, lookupCache(cache, k)!, target, 'out.onnx')).toBeUndefined();
    expect(fs.readdirSync(target)).toEqual([]);
    // An entry folder without its manifest (cannot happen through storeInCache) is a miss too.
    fs.mkdirSync(entryDir(cache, 'ef'.repeat(32)), { recursive: true });
    expect(lookupCache(cache, 'ef'.repeat(32))).toBeUndefined();
  });

  it('concurrent writers of one key: one stores, the others find it; concurrent readers only ever get whole, verified files', async () => {
    const cache = path.join(dir, 'cache3');
    openCache(cache);
    const payload = path.join(dir, 'big.bin');
    const big = Buffer.alloc(8 << 20);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
    fs.writeFileSync(payload, big);
    const k = '12'.repeat(32);
    const mod = pathToFileURL(path.join(ROOT, 'dist/pipeline/batch-cache.js')).href;
    const writer = `const c = await import(${JSON.stringify(mod)}); process.stdout.write(c.storeInCache(${JSON.stringify(cache)}, ${JSON.stringify(k)}, [${JSON.stringify(payload)}], ${JSON.stringify(dir)}, { w: process.pid }));`;
    // Readers poll until they have restored one copy; each restored file is compared with the payload.
    const reader = (n: number) => {
      const t = path.join(dir, `reader${n}`);
      fs.mkdirSync(t);
      return `const fs = await import('node:fs'); const c = await import(${JSON.stringify(mod)});
        for (let i = 0; i < 20000; i++) { const e = c.lookupCache(${JSON.stringify(cache)}, ${JSON.stringify(k)});
          if (e) { const w = c.restoreFromCache(${JSON.stringify(cache)}, e, ${JSON.stringify(t)}, 'o.onnx'); if (w) { process.stdout.write(w.join(',')); break; } }
          await new Promise((r) => setTimeout(r, 2)); }`;
    };
    const run = (code: string) =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`exit ${c}: ${err}`))));
      });
    const results = await Promise.all([run(reader(1)), run(reader(2)), ...Array.from({ length: 4 }, () => run(writer))]);
    const writes = results.slice(2);
    expect(writes.filter((w) => w === 'stored')).toHaveLength(1);
    expect(writes.filter((w) => w === 'exists')).toHaveLength(3);
    for (const r of results.slice(0, 2)) expect(fs.readFileSync(r).equals(big)).toBe(true);
    expect(fs.readdirSync(path.join(cache, '.tmp'))).toEqual([]);
    expect(fs.readdirSync(entryDir(cache, k)).sort()).toEqual([CACHE_ENTRY_FILE, 'model.onnx']);
  }, 60_000);
});

describe('sweepOwnedTemp', () => {
  it('removes the temp folders of dead processes on this host, keeps live ones and young foreign ones', async () => {
    const d = path.join(dir, 'sweep');
    fs.mkdirSync(d);
    const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
    const dead = await new Promise<number>((resolve) => {
      const p = spawn(process.execPath, ['-e', '0']);
      p.on('exit', () => resolve(p.pid!));
    });
    const names = [`${host}-${dead}-0123456789ab`, `${host}-${process.pid}-0123456789ab`, `other-host-${dead}-0123456789ab`, 'unrelated'];
    for (const n of names) fs.mkdirSync(path.join(d, n));
    sweepOwnedTemp(d);
    expect(fs.readdirSync(d).sort()).toEqual(names.slice(1).sort());
    // Another host's folder is removed once it is over a day old.
    const old = (Date.now() - 25 * 3600 * 1000) / 1000;
    fs.utimesSync(path.join(d, names[2]), old, old);
    sweepOwnedTemp(d);
    expect(fs.readdirSync(d).sort()).toEqual([names[1], 'unrelated'].sort());
  });
});
