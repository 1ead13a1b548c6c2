/**
 * The WebAssembly SIMD calibration kernel (assembly/calibrate.ts, built by `npm run build` into
 * dist/calibrate/calibrate.wasm): min/max/Σx² and histogram binning over a batch copied once into the
 * kernel's memory. It replaces the JavaScript loops of RunningStats and StreamingHistogram with the
 * same results (min, max and bin counts exactly; Σx² in another summation order). Without the .wasm
 * file or WebAssembly SIMD (or with QTOOL_WASM=0) the JavaScript loops run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// The WebAssembly globals this module uses (lib ES2022 + @types/node 20 do not declare them).
declare namespace WebAssembly {
  class Memory {
    constructor(d: { initial: number });
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(m: Module, imports: object);
    readonly exports: Record<string, unknown>;
  }
}

const WASM_FILE = 'calibrate.wasm';
const PAGE = 65536;
/** Byte offset of scan()'s results, then of the four interleaved count arrays, then the values. */
const OUT = 0;
const HIST = 64;

interface Exports {
  scan(ptr: number, n: number, out: number): void;
  bin(ptr: number, n: number, inv: number, off: number, hist: number, bins: number): void;
}

export class CalibrationKernel {
  private loaded = 0;
  private dataAt = HIST;
  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly k: Exports,
  ) {}

  static create(bytes: Uint8Array): CalibrationKernel {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory, abort: () => { throw new Error('calibration kernel aborted'); } } });
    return new CalibrationKernel(memory, instance.exports as unknown as Exports);
  }

  /** Copy a batch into the kernel's memory (room for histograms of up to `bins` bins before it). */
  load(x: Float32Array, bins: number): void {
    this.dataAt = HIST + 16 * bins + 64;
    const need = this.dataAt + x.length * 4;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    new Float32Array(this.memory.buffer, this.dataAt, x.length).set(x);
    this.loaded = x.length;
  }

  /** [min, max, Σx²] of the loaded batch (NaN/±Inf propagate into them as in the JavaScript loop). */
  scan(): [number, number, number] {
    this.k.scan(this.dataAt, this.loaded, OUT);
    const f = new Float32Array(this.memory.buffer, OUT, 2);
    return [f[0], f[1], new Float64Array(this.memory.buffer, OUT + 8, 1)[0]];
  }

  /** out[floor(v·inv − off)] += 1 for every loaded value (all must land inside out). */
  bin(inv: number, off: number, out: Uint32Array): void {
    const bins = out.length;
    new Uint32Array(this.memory.buffer, HIST, 4 * bins).fill(0);
    this.k.bin(this.dataAt, this.loaded, inv, off, HIST, bins);
    out.set(new Uint32Array(this.memory.buffer, HIST, bins));
  }
}

let kernel: CalibrationKernel | null | undefined;

/** The .wasm next to this module, or under dist/ when running from src/ (tests); undefined if absent. */
function wasmPath(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [path.resolve(here, '..'), path.resolve(here, '../../../dist/calibrate')]) {
    const f = path.join(dir, WASM_FILE);
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** The shared kernel of this thread, or undefined (no .wasm, no SIMD, or QTOOL_WASM=0): use the JavaScript loops. */
export function calibrationKernel(): CalibrationKernel | undefined {
  if (kernel !== undefined) return kernel ?? undefined;
  kernel = null;
  if (process.env.QTOOL_WASM === '0') return undefined;
  const file = wasmPath();
  if (!file) return undefined;
  try {
    kernel = CalibrationKernel.create(fs.readFileSync(file));
  } catch {
    kernel = null; // no WebAssembly SIMD here
  }
  return kernel ?? undefined;
}

/** Forget the kernel (tests switch between the WebAssembly and JavaScript paths). */
export function resetCalibrationKernel(): void {
  kernel = undefined;
}
