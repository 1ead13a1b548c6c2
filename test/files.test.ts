import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { PENDING_TEMP_FILES, describeFsError, fileExists, readInput, removePendingTempFiles, resolveInside, sha256, writeFileAtomic } from '../src/files.js';
import { makeTempDir } from './helpers/tmp.js';

const dir = makeTempDir('qtool-files-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function expectInputError(fn: () => unknown, code: string, re?: RegExp): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    const e = err as InputError;
    expect(e.code).toBe(code);
    if (re) expect(e.message).toMatch(re);
    return e;
  }
  throw new Error('expected an InputError');
}

describe('readInput', () => {
  it('reads a file', () => {
    const f = path.join(dir, 'a.bin');
    fs.writeFileSync(f, Uint8Array.from([1, 2, 3]));
    expect([...readInput(f)]).toEqual([1, 2, 3]);
  });

  it('names the file for a missing path, a directory and a bad path component', () => {
    const missing = path.join(dir, 'nope.onnx');
    const e = expectInputError(() => readInput(missing), 'E_READ', /no such file/);
    expect(e.file).toBe(missing);
    expect(e.message.startsWith(`${missing}: `)).toBe(true);
    expectInputError(() => readInput(dir), 'E_READ', /is a directory/);
    const f = path.join(dir, 'plain.txt');
    fs.writeFileSync(f, 'x');
    expectInputError(() => readInput(path.join(f, 'child')), 'E_READ', /not a directory/);
  });

  it('describes fs error codes in words', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(describeFsError(err('ENOENT'), 'x')).toBe('no such file');
    expect(describeFsError(err('EACCES'), 'x')).toBe('permission denied');
    expect(describeFsError(err('EISDIR'), 'x')).toBe('is a directory, expected a file');
    expect(describeFsError(err('EMFILE'), 'cannot read')).toBe('cannot read (EMFILE)');
    expect(describeFsError(new Error('no code'), 'cannot read')).toBe('cannot read');
  });
});

describe('writeFileAtomic', () => {
  it('writes strings, bytes and chunk lists, replacing the target and leaving no temp file', () => {
    const f = path.join(dir, 'out.bin');
    writeFileAtomic(f, 'hello');
    expect(fs.readFileSync(f, 'utf8')).toBe('hello');
    writeFileAtomic(f, Uint8Array.from([9, 8]));
    expect([...fs.readFileSync(f)]).toEqual([9, 8]);
    writeFileAtomic(f, [Uint8Array.from([1]), new Uint8Array(0), Uint8Array.from([2, 3])]);
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.qtool-tmp-'))).toEqual([]);
    expect(PENDING_TEMP_FILES.size).toBe(0);
  });

  it('fails with InputError E_WRITE naming the target when the folder is missing', () => {
    const f = path.join(dir, 'missing-dir', 'out.bin');
    const e = expectInputError(() => writeFileAtomic(f, 'x'), 'E_WRITE', /no such file/);
    expect(e.file).toBe(f);
    expect(PENDING_TEMP_FILES.size).toBe(0);
  });

  it('removePendingTempFiles deletes registered temp files', () => {
    const tmp = path.join(dir, '.qtool-tmp-test');
    fs.writeFileSync(tmp, 'partial');
    PENDING_TEMP_FILES.add(tmp);
    removePendingTempFiles();
    expect(fileExists(tmp)).toBe(false);
    expect(PENDING_TEMP_FILES.size).toBe(0);
  });
});

describe('resolveInside', () => {
  it('resolves relative paths inside the folder', () => {
    expect(resolveInside(dir, 'w.data')).toBe(path.join(dir, 'w.data'));
    expect(resolveInside(dir, 'sub/w.data')).toBe(path.join(dir, 'sub', 'w.data'));
    expect(resolveInside(dir, './w.data')).toBe(path.join(dir, 'w.data'));
  });

  it.each([
    ['/etc/passwd'],
    ['../x'],
    ['../../etc/passwd'],
    ['sub/../../x'],
    ['sub/../x'],
    ['..'],
    ['C:\\Windows\\x'],
    ['\\\\server\\share\\x'],
    ['..\\x'],
    ['a\0b'],
    [''],
    ['.'],
    ['sub/..'],
  ])('refuses %j with E_EXTERNAL_DATA_ESCAPE naming the model file', (rel) => {
    const e = expectInputError(() => resolveInside(dir, rel, 'model.onnx'), 'E_EXTERNAL_DATA_ESCAPE');
    expect(e.file).toBe('model.onnx');
    expect(e.message.split('\n')).toHaveLength(1);
  });
});

describe('sha256 and fileExists', () => {
  it('hashes strings and bytes the same way', () => {
    expect(sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(new TextEncoder().encode('abc'))).toBe(sha256('abc'));
  });
  it('reports existence', () => {
    expect(fileExists(dir)).toBe(true);
    expect(fileExists(path.join(dir, 'none'))).toBe(false);
  });
});
