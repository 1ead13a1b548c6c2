import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import { calibrateFile, DEFAULT_CALIBRATION_SAMPLES } from '../../src/pipeline/calibrate.js';
import { encodeNpy, openDataset, type Dataset } from '../../src/data/index.js';
import { encodeZip } from '../../src/data/zip.js';
import { InputError } from '../../src/errors.js';
import { ModelProtoSchema, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import type { Feeds } from '../../src/runtime/index.js';
import { makeTempDir } from '../helpers/tmp.js';

const dir = makeTempDir('qtool-hostile-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** x [batch, 4] float32 (and a bool input when asked). */
function model(withBool = false): Model {
  const inputs = [makeValueInfo('x', 'float32', ['batch', 4]), ...(withBool ? [makeValueInfo('m', 'bool', ['batch', 2])] : [])];
  const graph = makeGraph({
    name: 'g',
    nodes: [makeNode({ opType: 'Identity', inputs: ['x'], outputs: ['y'] }), ...(withBool ? [makeNode({ opType: 'Identity', inputs: ['m'], outputs: ['z'] })] : [])],
    inputs,
    outputs: [makeValueInfo('y', 'float32', ['batch', 4]), ...(withBool ? [makeValueInfo('z', 'bool', ['batch', 2])] : [])],
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'g.onnx', baseDir: '.' };
}

async function drain(ds: Dataset): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const f of ds.batches(8)) out.push(f);
  return out;
}

async function dataError(run: () => Promise<unknown>, code: string, re: RegExp): Promise<InputError> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).code).toBe(code);
  expect((err as Error).message).toMatch(re);
  expect((err as Error).message).not.toContain('\n');
  return err as InputError;
}

const npy = () => encodeNpy(makeTensor('float32', [3, 4], Float32Array.from({ length: 12 }, (_, i) => i)));

/** A one-entry stored zip whose central-directory entry gets `extra` (and optionally 0xffffffff sizes). */
function zipWithExtra(extra: Buffer, opts: { zip64Sizes?: boolean; declaredExtraLen?: number } = {}): Buffer {
  const z = Buffer.concat(encodeZip([{ name: 'x.npy', data: npy() }]));
  const cd = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  const eocd = z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const nameLen = z.readUInt16LE(cd + 28);
  const entry = Buffer.from(z.subarray(cd, cd + 46 + nameLen));
  entry.writeUInt16LE(opts.declaredExtraLen ?? extra.length, 30);
  if (opts.zip64Sizes) {
    entry.writeUInt32LE(0xffffffff, 20);
    entry.writeUInt32LE(0xffffffff, 24);
  }
  const tail = Buffer.from(z.subarray(eocd));
  tail.writeUInt32LE(entry.length + extra.length, 12);
  return Buffer.concat([z.subarray(0, cd), entry, extra, tail]);
}

function extraField(id: number, body: Buffer, declaredLen = body.length): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(id, 0);
  h.writeUInt16LE(declaredLen, 2);
  return Buffer.concat([h, body]);
}

describe('hostile .npz archives: exit-3 errors, never a RangeError', () => {
  it.each([
    ['an extra field overrunning its entry', () => zipWithExtra(extraField(0x7075, Buffer.alloc(4), 400)), /overruns/],
    ['an extra area overrunning the directory', () => zipWithExtra(Buffer.alloc(0), { declaredExtraLen: 0xffff }), /overruns the directory/],
    ['a ZIP64 extra too short for the sizes it must hold', () => zipWithExtra(extraField(0x0001, Buffer.alloc(4)), { zip64Sizes: true }), /ZIP64 extra field .* too short/],
  ])('%s', async (_name, build, re) => {
    const f = path.join(dir, `bad-${Math.random().toString(16).slice(2)}.npz`);
    fs.writeFileSync(f, build());
    await dataError(() => openDataset(f, model()), 'E_DATA_FORMAT', re);
  });

  it('a sound archive built the same way still reads', async () => {
    const f = path.join(dir, 'good.npz');
    fs.writeFileSync(f, zipWithExtra(extraField(0x7075, Buffer.alloc(4))));
    const b = await drain(await openDataset(f, model()));
    expect(b[0].x.dims).toEqual([3, 4]);
  });
});

describe('JSON Lines', () => {
  it('a line nested 8,000 deep is an E_DATA_SHAPE error naming the line, with the shape elided', async () => {
    const f = path.join(dir, 'deep.jsonl');
    fs.writeFileSync(f, `{"x": ${'['.repeat(8000)}1${']'.repeat(8000)}}\n`);
    const e = await dataError(async () => drain(await openDataset(f, model())), 'E_DATA_SHAPE', /expected shape/);
    expect(e.file).toBe(`${f}:1`);
    expect(e.message.length).toBeLessThan(400);
  });

  it('booleans are refused for a numeric input and read as 0/1 for a bool input', async () => {
    const f = path.join(dir, 'bool.jsonl');
    fs.writeFileSync(f, '{"x": [1, true, 0, 2]}\n');
    await dataError(async () => drain(await openDataset(f, model())), 'E_DATA_DTYPE', /got a boolean/);
    const g = path.join(dir, 'bool-ok.jsonl');
    fs.writeFileSync(g, '{"x": [1, 2, 3, 4], "m": [true, false]}\n');
    const [b] = await drain(await openDataset(g, model(true)));
    expect(b.m.dtype).toBe('bool');
    expect([...b.m.data]).toEqual([1, 0]);
  });
});

describe('data from a pipe', () => {
  it('--data /dev/stdin (a socket from spawn, or a pipe) is read sequentially: .npy and .jsonl', async () => {
    for (const [name, bytes] of [
      ['npy', Buffer.from(npy())],
      ['jsonl', Buffer.from('{"x": [1, 2, 3, 4]}\n{"x": [5, 6, 7, 8]}\n')],
    ] as const) {
      const file = path.join(dir, `stdin.${name}`);
      fs.writeFileSync(file, bytes);
      // A child reads its stdin pipe through openDataset('/dev/stdin') and prints the sample count.
      const script = path.join(dir, 'read-stdin.mjs');
      fs.writeFileSync(script, childScript());
      const viaSocket = spawnSync(process.execPath, [script], { input: bytes, encoding: 'utf8' });
      const viaPipe = spawnSync('sh', ['-c', `cat '${file}' | '${process.execPath}' '${script}'`], { encoding: 'utf8' });
      for (const r of [viaSocket, viaPipe]) {
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe(name === 'npy' ? '3' : '2');
      }
    }
  });

  it('a FIFO with no writer fails with E_READ after the wait instead of hanging', async () => {
    const fifo = path.join(dir, 'nowriter.npy');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await dataError(() => openDataset(fifo, model(), { pipe: { waitMs: 300 } }), 'E_READ', /no data after/);
  });

  it('a FIFO whose writer comes late is read in full', async () => {
    const fifo = path.join(dir, 'late.npy');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const src = path.join(dir, 'late-src.npy');
    fs.writeFileSync(src, npy());
    const writer = spawn('sh', ['-c', `sleep 0.3; cat '${src}' > '${fifo}'`]);
    const exited = new Promise((r) => writer.on('exit', r));
    const ds = await openDataset(fifo, model());
    expect(ds.sampleCount).toBe(3);
    expect((await drain(ds))[0].x.dims).toEqual([3, 4]);
    await exited;
  });

  it('devices are refused', async () => {
    await dataError(() => openDataset('/dev/zero', model()), 'E_READ', /character device/);
  });
});

describe('calibrate reads a bounded number of samples by default', () => {
  it(`a deflate bomb of tiny samples is capped at DEFAULT_CALIBRATION_SAMPLES (${DEFAULT_CALIBRATION_SAMPLES}) with a warning`, async () => {
    const n = 200_000;
    const big = encodeNpy(makeTensor('float32', [n, 4], new Float32Array(n * 4)));
    const f = path.join(dir, 'bomb.npz');
    fs.writeFileSync(f, Buffer.concat(encodeZip([{ name: 'input.npy', data: big }], true)));
    expect(fs.statSync(f).size).toBeLessThan(big.length / 100);
    const m = path.join(dir, 'id.onnx');
    fs.writeFileSync(m, Buffer.from(toBinaryModel()));
    const { summary } = await calibrateFile(m, { data: f, output: path.join(dir, 'bomb.calib.json') });
    expect(summary.samples).toBe(DEFAULT_CALIBRATION_SAMPLES);
    expect(summary.warnings.some((w) => /default cap/.test(w))).toBe(true);
  });
});

function toBinaryModel(): Uint8Array {
  // input [batch, 4] → Relu → output: one float activation to calibrate.
  const graph = makeGraph({
    name: 'g',
    nodes: [makeNode({ opType: 'Relu', inputs: ['input'], outputs: ['output'] })],
    inputs: [makeValueInfo('input', 'float32', ['batch', 4])],
    outputs: [makeValueInfo('output', 'float32', ['batch', 4])],
  });
  return serialize(makeModel({ graph, opsets: { '': 17 } }));
}

function serialize(p: ReturnType<typeof makeModel>): Uint8Array {
  return toBinary(ModelProtoSchema, p);
}

function childScript(): string {
  const root = path.resolve(__dirname, '../..');
  return `
    const d = await import(${JSON.stringify(path.join(root, 'dist/data/index.js'))});
    const o = await import(${JSON.stringify(path.join(root, 'dist/onnx/index.js'))});
    const graph = o.makeGraph({ name: 'g', nodes: [o.makeNode({ opType: 'Identity', inputs: ['x'], outputs: ['y'] })], inputs: [o.makeValueInfo('x', 'float32', ['batch', 4])], outputs: [o.makeValueInfo('y', 'float32', ['batch', 4])] });
    const model = { proto: o.makeModel({ graph, opsets: { '': 17 } }), file: 'g.onnx', baseDir: '.' };
    const ds = await d.openDataset('/dev/stdin', model);
    let n = 0;
    for await (const f of ds.batches(8)) n += f.x.dims[0];
    process.stdout.write(String(n));
  `;
}
