import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, UsageError } from '../src/errors.js';
import { PENDING_TEMP_FILES, checkOutputPaths, makeOwnTempDir, onTempFilesChange, readInput, removeOwnTempDir, resolveInside, sweepStaleTemp, writeFileAtomic } from '../src/files.js';
import { makeTempDir } from './helpers/tmp.js';
import { caught } from './helpers/caught.js';

const dir = makeTempDir('qtool-guard-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));


describe('resolveInside follows links (E_EXTERNAL_DATA_ESCAPE)', () => {
  const model = path.join(dir, 'm');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(model);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.bin'), 'secret');
  fs.writeFileSync(path.join(model, 'w.data'), 'ok');
  fs.mkdirSync(path.join(model, 'sub'));
  fs.writeFileSync(path.join(model, 'sub', 'x.data'), 'ok');
  fs.symlinkSync(path.join(outside, 'secret.bin'), path.join(model, 'file-link.data'));
  fs.symlinkSync(outside, path.join(model, 'dir-link'));
  fs.symlinkSync('w.data', path.join(model, 'inner-link.data'));
  fs.symlinkSync('/proc/self/environ', path.join(model, 'proc.data'));
  fs.symlinkSync(path.join(outside, 'gone'), path.join(model, 'dangling.data'));

  it('accepts plain files and links that stay inside', () => {
    expect(resolveInside(model, 'w.data')).toBe(path.join(fs.realpathSync(model), 'w.data'));
    expect(resolveInside(model, 'sub/x.data')).toBe(path.join(fs.realpathSync(model), 'sub', 'x.data'));
    expect(resolveInside(model, 'inner-link.data')).toBe(path.join(fs.realpathSync(model), 'w.data'));
  });

  it.each([['file-link.data'], ['dir-link/secret.bin'], ['proc.data'], ['dangling.data'], ['dir-link/not-there.bin']])('refuses %s', (rel) => {
    const e = caught(() => resolveInside(model, rel, 'm/model.onnx'));
    expect(e).toBeInstanceOf(InputError);
    expect(e.code).toBe('E_EXTERNAL_DATA_ESCAPE');
    expect(e.file).toBe('m/model.onnx');
  });

  it('refuses FIFOs and devices, and links to them', () => {
    const fifo = path.join(model, 'pipe.data');
    spawnSyncOk('mkfifo', [fifo]);
    fs.symlinkSync('/dev/zero', path.join(model, 'zero.data'));
    expect(caught(() => resolveInside(model, 'pipe.data')).message).toMatch(/FIFO.*expected a regular file/);
    // /dev/zero is outside the folder; a device inside is refused as non-regular either way.
    expect(caught(() => resolveInside(model, 'zero.data')).code).toBe('E_EXTERNAL_DATA_ESCAPE');
  });

  it('allows the real folder of a symlinked model file when asked (Hugging Face cache layout)', () => {
    const blobs = path.join(dir, 'blobs');
    const snap = path.join(dir, 'snap');
    fs.mkdirSync(blobs);
    fs.mkdirSync(snap);
    fs.writeFileSync(path.join(blobs, 'aaa'), 'data');
    fs.symlinkSync(path.join(blobs, 'aaa'), path.join(snap, 'model.onnx_data'));
    expect(caught(() => resolveInside(snap, 'model.onnx_data')).code).toBe('E_EXTERNAL_DATA_ESCAPE');
    expect(resolveInside(snap, 'model.onnx_data', undefined, { roots: [blobs] })).toBe(path.join(fs.realpathSync(blobs), 'aaa'));
  });

  it("purpose 'write' refuses to write through a link", () => {
    expect(caught(() => resolveInside(model, 'inner-link.data', undefined, { purpose: 'write' })).message).toMatch(/symbolic link/);
    expect(resolveInside(model, 'new.data', undefined, { purpose: 'write' })).toBe(path.join(model, 'new.data'));
    expect(caught(() => resolveInside(model, 'dir-link/new.data', undefined, { purpose: 'write' })).code).toBe('E_EXTERNAL_DATA_ESCAPE');
  });
});

function spawnSyncOk(cmd: string, args: string[]): void {
  if (spawnSync(cmd, args).status !== 0) throw new Error(`${cmd} failed`);
}

describe('checkOutputPaths: the one output guard', () => {
  const input = path.join(dir, 'in.onnx');
  fs.writeFileSync(input, 'model');
  const data = path.join(dir, 'in.onnx.data');
  fs.writeFileSync(data, 'weights');

  it('refuses an output that is an input, by path, symlink or hard link, even with force', () => {
    const sym = path.join(dir, 'sym.onnx');
    const hard = path.join(dir, 'hard.onnx');
    fs.symlinkSync(input, sym);
    fs.linkSync(input, hard);
    for (const out of [input, path.join(dir, '.', 'in.onnx'), sym, hard, data]) {
      const e = caught(() => checkOutputPaths([out], { inputs: [input, data], force: true }));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.code).toBe('E_OUTPUT_IS_INPUT');
      expect(e.file).toBe(out);
    }
    expect(fs.readFileSync(input, 'utf8')).toBe('model');
  });

  it('refuses non-regular targets (devices, FIFOs, folders) whatever force says', () => {
    expect(caught(() => checkOutputPaths(['/dev/null'], { force: true })).message).toMatch(/character device/);
    const fifo = path.join(dir, 'out.fifo');
    spawnSyncOk('mkfifo', [fifo]);
    expect(caught(() => checkOutputPaths([fifo], { force: true })).message).toMatch(/FIFO/);
    expect(caught(() => checkOutputPaths([dir], { force: true })).message).toMatch(/directory/);
    // writeFileAtomic itself never renames over a device or FIFO either.
    expect(caught(() => writeFileAtomic(fifo, 'x')).code).toBe('E_WRITE');
  });

  it('refuses existing outputs without force (reports and .data companions too), accepts them with force', () => {
    const report = path.join(dir, 'r.json');
    fs.writeFileSync(report, '{}');
    const e = caught(() => checkOutputPaths([path.join(dir, 'new.onnx'), report], { inputs: [input], force: false }));
    expect(e.code).toBe('E_OUTPUT_EXISTS');
    expect(e.file).toBe(report);
    expect(() => checkOutputPaths([path.join(dir, 'new.onnx'), report], { inputs: [input], force: true })).not.toThrow();
  });

  it('refuses two outputs naming one file', () => {
    const e = caught(() => checkOutputPaths([path.join(dir, 'a.json'), path.join(dir, 'x', '..', 'a.json')], {}));
    expect(e.code).toBe('E_OPTION_CONFLICT');
  });

  it('refuses a missing output folder', () => {
    expect(caught(() => checkOutputPaths([path.join(dir, 'nope', 'o.onnx')])).code).toBe('E_WRITE');
  });
});

describe('temp files', () => {
  it('makeOwnTempDir names the pid, registers the folder, and tells the listener', () => {
    const seen: string[] = [];
    onTempFilesChange((op, f) => seen.push(`${op}:${path.basename(f).split('-').slice(0, 3).join('-')}`));
    const d = makeOwnTempDir('opt');
    expect(path.basename(d).startsWith(`qtool-opt-${process.pid}-`)).toBe(true);
    expect(PENDING_TEMP_FILES.has(d)).toBe(true);
    removeOwnTempDir(d);
    onTempFilesChange(undefined);
    expect(fs.existsSync(d)).toBe(false);
    expect(seen).toEqual([`add:qtool-opt-${process.pid}`, `delete:qtool-opt-${process.pid}`]);
  });

  it('sweepStaleTemp removes files of dead qtool processes only', async () => {
    const out = path.join(dir, 'sweep');
    fs.mkdirSync(out);
    // A pid that is certainly dead: a child that has exited.
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
    const dead = path.join(out, `.qtool-tmp-${deadPid}-abcd1234-model.onnx`);
    const live = path.join(out, `.qtool-tmp-${process.pid}-abcd1234-model.onnx`);
    const other = path.join(out, '.qtool-tmp-notapid-model.onnx');
    const deadDir = path.join(os.tmpdir(), `qtool-opt-${deadPid}-XyZ123`);
    for (const f of [dead, live, other]) fs.writeFileSync(f, 'x');
    fs.mkdirSync(deadDir);
    fs.writeFileSync(path.join(deadDir, 'optimized.onnx'), 'x');
    const removed = sweepStaleTemp([out]);
    expect(removed).toContain(dead);
    expect(removed).toContain(deadDir);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(deadDir)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    expect(fs.existsSync(other)).toBe(true);
  });
});

describe('reading pipes', () => {
  it('reads a FIFO sequentially and fails (E_READ) instead of hanging when no writer comes', async () => {
    const fifo = path.join(dir, 'in.fifo');
    spawnSyncOk('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `printf hello > '${fifo}'`]);
    // readInput blocks this thread; the writer is another process.
    await new Promise((r) => setTimeout(r, 50));
    expect(readInput(fifo).toString()).toBe('hello');
    await new Promise((r) => writer.on('exit', r));
    const e = caught(() => readInput(fifo, { waitMs: 200 }));
    expect(e.code).toBe('E_READ');
    expect(e.message).toMatch(/no data after/);
  });

  it('refuses devices', () => {
    expect(caught(() => readInput('/dev/zero')).message).toMatch(/character device: expected a regular file or a pipe/);
  });
});
