import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { OrtError } from '../errors.js';
import { sha256 } from '../files.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelProtoSchema, checkSparseTensors, isExternal, saveModel, walkTensors, type Model } from '../onnx/index.js';
import { makeTensor, type DType, type Feeds, type Tensor } from '../tensor/index.js';

export type { Feeds };

export interface SessionOptions {
  /** Intra-op threads (default 1: steady figures on small machines). */
  threads?: number;
  /** Graph optimization level (default 'all'; calibration uses 'disabled'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write onnxruntime's optimized graph here (to check which kernels it fused). */
  optimizedModelFilePath?: string;
  /** Session config entries (AddConfigEntry), e.g. { 'session.qdq_matmulnbits_accuracy_level': '4' }. */
  config?: Readonly<Record<string, string>>;
  /** Name used in error messages. */
  name?: string;
  /** Record onnxruntime's per-node profile; files start with this prefix (read them after endProfiling()). */
  profileFilePrefix?: string;
  /** onnxruntime's CPU memory arena (default true); off for sessions with few, large, varying tensors, so freed memory goes back. */
  memArena?: boolean;
}

/** The one wrapper around an onnxruntime-node InferenceSession. */
export class Session {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly name: string,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Open a session from a loaded Model, model bytes, or a path on disk. */
  static async open(source: Model | Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
    const name = opts.name ?? (typeof source === 'string' ? source : source instanceof Uint8Array ? '<bytes>' : source.file);
    const so: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: opts.optimization ?? 'all',
      executionProviders: ['cpu'],
      logSeverityLevel: 4,
    };
    if (opts.memArena === false) so.enableCpuMemArena = false;
    if (opts.optimizedModelFilePath) so.optimizedModelFilePath = opts.optimizedModelFilePath;
    if (opts.profileFilePrefix) {
      so.enableProfiling = true;
      so.profileFilePrefix = opts.profileFilePrefix;
    }
    if (opts.config) {
      const extra: Record<string, Record<string, string>> = {};
      for (const [k, v] of Object.entries(opts.config)) {
        const dot = k.indexOf('.');
        const group = k.slice(0, dot);
        (extra[group] ??= {})[k.slice(dot + 1)] = v;
      }
      so.extra = extra;
    }
    // onnxruntime densifies sparse tensors itself, sized by their declared dims: check them first.
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) checkSparseTensors(source);
    try {
      let s: ort.InferenceSession;
      if (typeof source === 'string') s = await ort.InferenceSession.create(source, so);
      else if (source instanceof Uint8Array) s = await ort.InferenceSession.create(source, so);
      else if (hasExternalTensors(source)) s = await createViaTempFile(source, so);
      else s = await ort.InferenceSession.create(modelBytesForRuntime(source), so);
      return new Session(s, name);
    } catch (err) {
      throw new OrtError('E_ORT_LOAD', `onnxruntime could not load the model: ${firstLine(err)}`, { file: name, cause: err });
    }
  }

  /**
   * Run once. Returned tensors own their memory: onnxruntime-node copies every CPU output into a fresh
   * JS ArrayBuffer, and dispose() on such a tensor only drops the wrapper's reference, so no further copy
   * is made (the previous defensive slice() cost one extra pass over every output).
   */
  async run(feeds: Feeds, fetches?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(t);
    let out: ort.InferenceSession.ReturnType;
    try {
      out = fetches ? await this.session.run(ortFeeds, fetches as string[]) : await this.session.run(ortFeeds);
    } catch (err) {
      throw new OrtError('E_ORT_RUN', `onnxruntime failed to run the model: ${firstLine(err)}`, { file: this.name, cause: err });
    }
    const result: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) {
      result[k] = fromOrtTensor(v);
      v.dispose();
    }
    return result;
  }

  /** Stop profiling (sessions opened with profileFilePrefix) and flush the profile file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Bytes of a model for onnxruntime; external data is resolved by onnxruntime only from a path. */
export function modelBytesForRuntime(model: Model): Uint8Array {
  return toBinary(ModelProtoSchema, model.proto);
}

function hasExternalTensors(model: Model): boolean {
  for (const t of walkTensors(model.proto.graph!)) if (isExternal(t)) return true;
  return false;
}

/** onnxruntime resolves external data relative to a model path, so such models go through a temp folder. */
async function createViaTempFile(model: Model, so: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-ort-'));
  try {
    const file = path.join(dir, 'model.onnx');
    saveModel(model, file, { externalData: true });
    return await ort.InferenceSession.create(file, so);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0].slice(0, 500);
}

export function toOrtTensor(t: Tensor): ort.Tensor {
  switch (t.dtype) {
    case 'float16':
      return new ort.Tensor('float16', t.data as Uint16Array, t.dims);
    case 'int4':
    case 'uint4':
    case 'bfloat16':
      throw new OrtError('E_ORT_RUN', `qtool cannot feed ${t.dtype} tensors to onnxruntime-node`);
    default:
      return new ort.Tensor(t.dtype as never, t.data as never, t.dims);
  }
}

/**
 * A qtool Tensor over an onnxruntime-node CPU output's data, without copying: the binding hands out a
 * JS-owned ArrayBuffer (no native disposer), so the data stays valid after `v.dispose()` and later runs.
 */
export function fromOrtTensor(v: ort.Tensor): Tensor {
  const dims = [...v.dims];
  const dtype = v.type as DType;
  return makeTensor(dtype, dims, v.data as never);
}

/**
 * The one rule for a model's sha256 (calibration tables, sensitivity and search reports): the bytes
 * of its file when it is a file on disk, else of the serialized model (built or changed in memory).
 */
export function modelSha256(model: Model): string {
  try {
    if (fs.statSync(model.file).isFile()) return sha256(fs.readFileSync(model.file));
  } catch {
    // not a file on disk: hash the serialized model
  }
  return sha256(modelBytesForRuntime(model));
}

/** The onnxruntime version the binding reports (part of batch cache keys). */
export function ortVersion(): string {
  return ort.env.versions.common ?? ort.env.versions.node ?? 'unknown';
}

