import { create } from '@bufbuild/protobuf';
import { InputError } from '../errors.js';
import { GraphIndex, NameAllocator, ValueInfoProtoSchema, makeNode, opsetVersion, quantizableLayers, tensorToProto, type Model, type QuantizableLayer } from '../onnx/index.js';
import { openMatMulSession, openSpilledSession, type Feeds } from '../runtime/index.js';
import { makeTensor, toFloat32 } from '../tensor/index.js';
import { canonicalWeight, gptq, placeGptq, type CanonicalWeight, type GptqResult, type GptqSettings, type QuantizedWeight, type WeightQuantSpec } from '../quant/index.js';
import { ActivationStats, layerwiseView, type LayerwiseView } from './layerwise.js';

/**
 * Streaming layer-input statistics for the layer-wise reconstruction algorithms (GPTQ, bias
 * correction): per layer and conv group, S = Σ x xᵀ and Σ x over every reduction vector x of the
 * calibration data (activation rows of MatMul/Gemm, im2col patches of Conv), never storing
 * activations. For MatMul/Gemm the products run inside an augmented copy of the graph
 * (x → Reshape[-1, K] → Gemm(transA) and ReduceSum), so onnxruntime's MLAS does the O(rows·K²) work and
 * only K×K floats per batch come back; convolutions go through the JS im2col accumulator.
 */
export interface LayerInputStats {
  view: LayerwiseView;
  /** The activation the statistics are of. */
  activation: string;
  /** Reduction vectors seen (per group). */
  rows: number;
  /** Per group: Σ x xᵀ / rows (K×K, float32, symmetric). H = 2·this. Empty with meanOnly. */
  second: Float32Array[];
  /** Per group: Σ x / rows (K). */
  mean: Float64Array[];
  /** Per channel max |x| over every row (MatMul/Gemm inputs only). */
  maxAbs?: Float32Array;
}

export interface HessianOptions {
  /** Layer ids to collect (default: every MatMul/Gemm/Conv with an im2col view whose activation is a main-graph tensor). */
  layers?: readonly string[];
  /** Largest reduction size collected (K×K floats per layer; default 8192). */
  maxDim?: number;
  /** Conv only: patches sampled for Σ x xᵀ (the JS path; default 20000). */
  convRows?: number;
  /** Samples that will be fed in total (sets the conv patch sampling rate; default 256). */
  totalSamples?: number;
  /**
   * Only E[x] and max |x| (bias correction, outlier split): no E[x xᵀ]. Conv patch means then come from
   * the graph too (a one-hot depthwise Conv that lays the im2col patches out as channels, then ReduceSum),
   * so no activation is fetched at all.
   */
  meanOnly?: boolean;
  seed?: number;
  threads?: number;
  /** Bytes of activation rows buffered per layer input before one engine product into Σ x xᵀ (default 8 MiB, at least 64 rows). */
  rowBufferBytes?: number;
}

interface LinearTarget {
  activation: string;
  view: Extract<LayerwiseView, { kind: 'linear' }>;
  layers: string[];
  xx?: string;
  sum: string;
  count: string;
  max: string;
  acc?: Float32Array;
  accMax?: Float32Array;
  accSum?: Float64Array;
  rows: number;
}

/** The layers GPTQ can work on, with their im2col view (weight-only layers of the main graph). */
export function hessianLayers(model: Model, opts: Pick<HessianOptions, 'layers' | 'maxDim'> = {}): { layer: QuantizableLayer; view: LayerwiseView; activation: string }[] {
  const index = new GraphIndex(model.proto.graph!, model.file);
  const wanted = opts.layers ? new Set(opts.layers) : undefined;
  const out: { layer: QuantizableLayer; view: LayerwiseView; activation: string }[] = [];
  for (const layer of quantizableLayers(index)) {
    if (layer.scope.path !== 'main' || (wanted && !wanted.has(layer.id))) continue;
    const activation = layer.node.input[layer.kind.activationInput];
    if (!activation || index.isConstant(activation)) continue;
    const view = layerwiseView(layer, layer.weightDims);
    if (!view || view.dim > (opts.maxDim ?? 8192)) continue;
    out.push({ layer, view, activation });
  }
  return out;
}

/** Collect Σ x xᵀ and Σ x for the requested layers over `batches` (one pass, one session). */
export async function collectLayerInputStats(model: Model, batches: AsyncIterable<Feeds> | Iterable<Feeds>, opts: HessianOptions = {}): Promise<Map<string, LayerInputStats>> {
  const targets = hessianLayers(model, opts);
  const graph = model.proto.graph!;
  const names = new NameAllocator(graph);
  const opset = opsetVersion(model.proto) ?? 13;
  const nodes = [...graph.node];
  const initializers = [...graph.initializer];
  const outputs = [...graph.output];
  const linear = new Map<string, LinearTarget>();
  const conv = new Map<string, { stats: ActivationStats; layers: string[]; activation: string; mean: Float64Array[]; rows: number }>();
  const fetchConv = new Set<string>();
  const convMeans = new Map<string, { view: Extract<LayerwiseView, { kind: 'conv' }>; activation: string; layers: string[]; sum: string; shape: string; rows: number; acc?: Float64Array }>();
  const axesNames = new Map<number, string>();
  const axesInit = (axis: number): string => {
    let n = axesNames.get(axis);
    if (!n) {
      axesNames.set(axis, (n = names.allocate(`qtool_axes_${axis}`)));
      initializers.push(tensorToProto(n, makeTensor('int64', [1], BigInt64Array.of(BigInt(axis)))));
    }
    return n;
  };
  targets.forEach(({ layer, view, activation }, i) => {
    if (view.kind === 'linear') {
      const key = `${activation}\u0000${view.dim}\u0000${view.transA}`;
      const t = linear.get(key);
      if (t) {
        t.layers.push(layer.id);
        return;
      }
      let x = activation;
      if (!view.transA) {
        const shape = names.allocate(`${activation}_qtool_rows_shape`);
        initializers.push(tensorToProto(shape, makeTensor('int64', [2], BigInt64Array.of(-1n, BigInt(view.dim)))));
        x = names.allocate(`${activation}_qtool_rows`);
        nodes.push(makeNode({ opType: 'Reshape', inputs: [activation, shape], outputs: [x], name: x }));
      }
      // Σ x xᵀ: the rows themselves are fetched ([M, K], or [K, M] for transA layers) and multiplied in
      // the MatMul engine a few hundred rows at a time into one accumulator (no K×K output per batch).
      const xx = opts.meanOnly ? undefined : x;
      const sum = names.allocate(`${activation}_qtool_xsum`);
      const axis = view.transA ? 1 : 0;
      // ReduceSum takes axes as an input from opset 13, ReduceMax from opset 18.
      const reduce = (opType: string, input: string, output: string, inputFrom: number) =>
        nodes.push(opset >= inputFrom ? makeNode({ opType, inputs: [input, axesInit(axis)], outputs: [output], name: output, attrs: { keepdims: 0 } }) : makeNode({ opType, inputs: [input], outputs: [output], name: output, attrs: { keepdims: 0, axes: [axis] } }));
      reduce('ReduceSum', x, sum, 13);
      const count = names.allocate(`${activation}_qtool_xshape`);
      nodes.push(makeNode({ opType: 'Shape', inputs: [x], outputs: [count], name: count }));
      const abs = names.allocate(`${activation}_qtool_abs`);
      nodes.push(makeNode({ opType: 'Abs', inputs: [x], outputs: [abs], name: abs }));
      const max = names.allocate(`${activation}_qtool_absmax`);
      reduce('ReduceMax', abs, max, 18);
      for (const o of [xx, sum, count, max]) if (o && !outputs.some((v) => v.name === o)) outputs.push(create(ValueInfoProtoSchema, { name: o }));
      linear.set(key, { activation, view, layers: [layer.id], xx, sum, count, max, rows: 0 });
      return;
    }
    const key = `${activation}\u0000${JSON.stringify(view)}`;
    const c = conv.get(key) ?? convMeans.get(key);
    if (c) {
      c.layers.push(layer.id);
      return;
    }
    if (opts.meanOnly && view.kind === 'conv' && layer.weightDims.length === 4) {
      // One-hot depthwise Conv: output channel (c·kh + ky)·kw + kx is x[c] sampled at patch offset (ky, kx).
      const [kh, kw] = view.kernel;
      const C = view.channelsPerGroup * view.groups;
      const e = new Float32Array(C * kh * kw * kh * kw);
      for (let ch = 0; ch < C; ch++) for (let p = 0; p < kh * kw; p++) e[(ch * kh * kw + p) * kh * kw + p] = 1;
      const en = names.allocate(`${activation}_qtool_patch_kernel`);
      initializers.push(tensorToProto(en, makeTensor('float32', [C * kh * kw, 1, kh, kw], e)));
      const patches = names.allocate(`${activation}_qtool_patches`);
      const attrs: Record<string, number | number[] | string> = { group: C, kernel_shape: [kh, kw], strides: view.strides, dilations: view.dilations };
      if (view.autoPad === 'NOTSET') attrs.pads = view.pads;
      else attrs.auto_pad = view.autoPad;
      nodes.push(makeNode({ opType: 'Conv', inputs: [activation, en], outputs: [patches], name: patches, attrs }));
      const sum = names.allocate(`${activation}_qtool_patch_sum`);
      const ax = names.allocate(`${activation}_qtool_patch_axes`);
      if (opset >= 13) {
        initializers.push(tensorToProto(ax, makeTensor('int64', [3], BigInt64Array.of(0n, 2n, 3n))));
        nodes.push(makeNode({ opType: 'ReduceSum', inputs: [patches, ax], outputs: [sum], name: sum, attrs: { keepdims: 0 } }));
      } else {
        nodes.push(makeNode({ opType: 'ReduceSum', inputs: [patches], outputs: [sum], name: sum, attrs: { keepdims: 0, axes: [0, 2, 3] } }));
      }
      const shape = names.allocate(`${activation}_qtool_patch_shape`);
      nodes.push(makeNode({ opType: 'Shape', inputs: [patches], outputs: [shape], name: shape }));
      for (const o of [sum, shape]) outputs.push(create(ValueInfoProtoSchema, { name: o }));
      convMeans.set(key, { view, activation, layers: [layer.id], sum, shape, rows: 0 });
      return;
    }
    const stats = new ActivationStats(view, { maxRows: opts.convRows ?? 20000, maxDim: Infinity, totalSamples: opts.totalSamples ?? 256, seed: (opts.seed ?? 0) + 31 * i });
    conv.set(key, { stats, layers: [layer.id], activation, mean: [], rows: 0 });
    fetchConv.add(activation);
  });
  for (const a of fetchConv) if (!outputs.some((o) => o.name === a)) outputs.push(create(ValueInfoProtoSchema, { name: a }));
  const augmented: Model = { ...model, proto: { ...model.proto, graph: { ...graph, node: nodes, initializer: initializers, output: outputs } } };
  const result = new Map<string, LayerInputStats>();
  if (targets.length === 0) return result;
  // The JS model's weights go to a temp file while onnxruntime holds them (the model is not read meanwhile).
  const spilled = await openSpilledSession(augmented, { name: model.file, threads: opts.threads ?? 1, optimization: 'basic', config: { 'session.disable_prepacking': '1' } });
  const session = spilled.session;
  const engine = [...linear.values()].some((t) => t.xx) ? await openMatMulSession({ threads: opts.threads ?? 1 }) : undefined;
  const fetches = [...new Set([...[...linear.values()].flatMap((t) => (t.xx ? [t.xx, t.sum, t.count, t.max] : [t.sum, t.count, t.max])), ...[...convMeans.values()].flatMap((c) => [c.sum, c.shape]), ...fetchConv])];
  const buffers = new Map<LinearTarget, RowBuffer>();
  let batchesSeen = 0;
  try {
    for await (const feeds of batches) {
      batchesSeen++;
      const out = await session.run(feeds, fetches);
      for (const t of linear.values()) {
        const sum = toFloat32(out[t.sum]);
        const mx = toFloat32(out[t.max]);
        const shape = out[t.count].data as BigInt64Array;
        const m = Number(t.view.transA ? shape[1] : shape[0]);
        t.rows += m;
        if (!t.accSum) {
          t.accSum = new Float64Array(sum.length);
          t.accMax = new Float32Array(mx.length);
        }
        for (let i = 0; i < mx.length; i++) if (mx[i] > t.accMax![i] || Number.isNaN(mx[i])) t.accMax![i] = mx[i];
        for (let i = 0; i < sum.length; i++) t.accSum![i] += sum[i];
        if (t.xx && engine) {
          let b = buffers.get(t);
          if (!b) buffers.set(t, (b = new RowBuffer(t.view.dim, opts.rowBufferBytes)));
          t.acc ??= new Float32Array(t.view.dim * t.view.dim);
          await b.add(toFloat32(out[t.xx]), m, t.view.transA, t.acc, engine.matmul);
        }
      }
      for (const c of conv.values()) c.stats.update(out[c.activation]);
      for (const c of convMeans.values()) {
        const sum = toFloat32(out[c.sum]);
        const d = out[c.shape].data as BigInt64Array;
        c.rows += Number(d[0]) * Number(d[2]) * Number(d[3]);
        if (!c.acc) c.acc = new Float64Array(sum.length);
        for (let i = 0; i < sum.length; i++) c.acc[i] += sum[i];
      }
    }
    for (const [t, b] of buffers) await b.flush(t.acc!, engine!.matmul);
  } finally {
    await spilled.release();
    await engine?.release();
  }
  if (batchesSeen === 0) throw new InputError('E_DATA_EMPTY', 'layer statistics need at least one calibration sample, got none', { file: model.file });
  for (const t of linear.values()) {
    const rows = Math.max(1, t.rows);
    const second = t.acc ?? new Float32Array(0);
    for (let i = 0; i < second.length; i++) second[i] /= rows;
    const mean = t.accSum!.map((v) => v / rows);
    const s: LayerInputStats = { view: t.view, activation: t.activation, rows: t.rows, second: t.xx ? [second] : [], mean: [mean], maxAbs: t.accMax };
    for (const id of t.layers) result.set(id, s);
  }
  for (const c of convMeans.values()) {
    const k = c.view.dim;
    const rows = Math.max(1, c.rows);
    // Patch channel (ch·kh + ky)·kw + kx with ch = g·cg + ci is im2col column ci·kh·kw + ky·kw + kx of group g.
    const mean = Array.from({ length: c.view.groups }, (_, g) => Float64Array.from({ length: k }, (_, j) => c.acc![g * k + j] / rows));
    const s: LayerInputStats = { view: c.view, activation: c.activation, rows: c.rows, second: [], mean };
    for (const id of c.layers) result.set(id, s);
  }
  for (const c of conv.values()) {
    const r = c.stats.result();
    const second = r.second.map((g) => Float32Array.from(g));
    const s: LayerInputStats = { view: c.stats.view, activation: c.activation, rows: r.rows, second, mean: r.mean };
    for (const id of c.layers) result.set(id, s);
  }
  return result;
}


/** Rows of one layer input, gathered as Xᵀ [K, R] and added into acc += XᵀX by the engine when full. */
class RowBuffer {
  private readonly cap: number;
  private readonly xt: Float32Array;
  private n = 0;
  private a?: Float32Array;
  private b?: Float32Array;
  constructor(
    private readonly k: number,
    bufferBytes = 8 * 1024 * 1024,
  ) {
    this.cap = Math.max(64, Math.floor(bufferBytes / (4 * k)));
    this.xt = new Float32Array(k * this.cap);
  }
  /** Add m rows: data is [m, K] row-major, or [K, m] when `transposed`. */
  async add(data: Float32Array, m: number, transposed: boolean, acc: Float32Array, engine: (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>): Promise<void> {
    const { k, cap, xt } = this;
    for (let r0 = 0; r0 < m; ) {
      const take = Math.min(m - r0, cap - this.n);
      for (let j = 0; j < k; j++) {
        const dst = j * cap + this.n;
        if (transposed) xt.set(data.subarray(j * m + r0, j * m + r0 + take), dst);
        else for (let r = 0; r < take; r++) xt[dst + r] = data[(r0 + r) * k + j];
      }
      this.n += take;
      r0 += take;
      if (this.n === cap) await this.flush(acc, engine);
    }
  }
  async flush(acc: Float32Array, engine: (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>): Promise<void> {
    const { k, cap, n } = this;
    if (n === 0) return;
    // A = Xᵀ [K, n] (the first n columns of each row), B = X [n, K]; both buffers reused across flushes.
    this.a ??= new Float32Array(k * cap);
    this.b ??= new Float32Array(cap * k);
    const a = this.a.subarray(0, k * n);
    const b = this.b.subarray(0, n * k);
    for (let j = 0; j < k; j++) a.set(this.xt.subarray(j * cap, j * cap + n), j * n);
    for (let j = 0; j < k; j++) for (let r = 0; r < n; r++) b[r * k + j] = a[j * n + r];
    const c = await engine(a, b, k, n, k);
    for (let i = 0; i < c.length; i++) acc[i] += c[i];
    this.n = 0;
  }
}

/** H = 2·E[x xᵀ] per group as float64 (what gptq() takes). */
export function hessiansOf(stats: LayerInputStats): Float64Array[] {
  return stats.second.map((s) => {
    const h = new Float64Array(s.length);
    for (let i = 0; i < s.length; i++) h[i] = 2 * s[i];
    return h;
  });
}

export interface GptqQuantizerOptions extends GptqSettings {
  /** Rows used to estimate Σ Δwᵀ H Δw on large layers (default 64; every row when cheap). */
  errorRows?: number;
}

/** What the rewriter's weight quantizer hook receives (structurally rewrite's WeightQuantizerRequest). */
export interface GptqRequest {
  layer: string;
  w: Float32Array;
  dims: readonly number[];
  spec: WeightQuantSpec;
  rtn: QuantizedWeight;
}

export interface GptqOutcome {
  quantized: QuantizedWeight;
  record: { algorithm: 'gptq'; reconstructionError: { rtn: number; after: number } };
}

export type GptqHook = (req: GptqRequest) => GptqOutcome | undefined;

export interface GptqProgress {
  layer: string;
  done: number;
  total: number;
}

/** Layer, layout, spec and a fingerprint of the weight values (a later rescaling of the weight must not reuse a result). */
const requestKey = (req: Pick<GptqRequest, 'layer' | 'dims' | 'spec' | 'w'>) => `${req.layer}\u0000${req.dims.join('x')}\u0000${JSON.stringify(req.spec)}\u0000${fingerprint(req.w)}`;

function fingerprint(w: Float32Array): string {
  const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
  let h = 0x811c9dc5;
  const step = Math.max(1, Math.floor(w.length / 4096));
  for (let i = 0; i < w.length; i += step) h = Math.imul(h ^ bits[i], 0x01000193) >>> 0;
  return `${w.length}:${h.toString(16)}`;
}

/** A placed GPTQ result kept until the real rewrite: integers offset into one byte when they fit. */
interface StoredOutcome {
  q: Uint8Array | Int16Array;
  qOffset: number;
  quantized: Omit<QuantizedWeight, 'q'>;
  record: GptqOutcome['record'];
}

/**
 * GPTQ for the layers of a rewrite, in two steps because the rewriter is synchronous and the heavy
 * products run asynchronously in onnxruntime: `dryRun(layer, hook)` must run the rewriter for that one
 * layer (e.g. applyPlan with includeNodes [layer]) so `hook` sees the weight exactly as the emitter
 * quantizes it; GPTQ then runs on it (every H from `stats`), the result is placed into the emitter's
 * layout right away (keeping RTN where it measures better, see placeGptq) and only the integers (one
 * byte each when they fit), scales and errors are kept. The returned hook, given to the real rewrite,
 * hands them back. Results are kept per layer and weight spec, so every later rewrite (search,
 * sensitivity) reuses them. With `releaseHessians`, a layer input's E[x xᵀ] is dropped from `stats`
 * after the last listed layer that reads it (layers sharing an input are processed together), so the
 * peak holds the remaining Hessians plus one layer's work.
 */
export async function prepareGptq(
  stats: ReadonlyMap<string, LayerInputStats>,
  layers: readonly string[],
  dryRun: (layer: string, hook: (req: GptqRequest) => undefined) => void,
  opts: GptqQuantizerOptions & { onProgress?: (p: GptqProgress) => void; releaseHessians?: boolean } = {},
): Promise<GptqHook> {
  const results = new Map<string, StoredOutcome>();
  // Layers that share an input (q/k/v) next to each other, in first-seen order.
  const listed = layers.filter((l) => stats.has(l));
  const byStats = new Map<LayerInputStats, string[]>();
  for (const l of listed) {
    const s = stats.get(l)!;
    const g = byStats.get(s);
    if (g) g.push(l);
    else byStats.set(s, [l]);
  }
  const todo = [...byStats.values()].flat();
  const remaining = new Map<LayerInputStats, number>([...byStats].map(([s, g]) => [s, g.length]));
  for (const [i, layer] of todo.entries()) {
    opts.onProgress?.({ layer, done: i, total: todo.length });
    const captured: { key: string; c: CanonicalWeight; rtn: QuantizedWeight }[] = [];
    dryRun(layer, (req) => {
      if (req.layer !== layer) return undefined;
      const key = requestKey(req);
      if (results.has(key) || captured.some((c) => c.key === key)) return undefined;
      const c = canonicalWeight(req.w, req.dims, req.spec);
      if (c) captured.push({ key, c, rtn: req.rtn });
      return undefined;
    });
    const s = stats.get(layer)!;
    for (const { key, c, rtn } of captured) {
      if (s.second.length === 0 || c.problem.rows % s.second.length !== 0 || s.view.dim !== c.problem.cols) continue;
      // H = 2·E[x xᵀ]; GPTQ's result does not depend on H's scale, so E[x xᵀ] goes in as it is (no copy).
      const res = await gptq({ ...c.problem, hessians: s.second }, opts);
      const placed = placeGptq(c, res, rtn, s.second, opts.errorRows ?? 64);
      const { q, ...rest } = placed.quantized;
      const span = rtn.range.qmax - rtn.range.qmin;
      const stored = span <= 255 ? Uint8Array.from(q, (v) => v - rtn.range.qmin) : Int16Array.from(q);
      results.set(key, {
        q: stored,
        qOffset: span <= 255 ? rtn.range.qmin : 0,
        quantized: rest,
        record: { algorithm: 'gptq', reconstructionError: { rtn: 2 * placed.errorRtn, after: 2 * placed.errorGptq } },
      });
    }
    const left = remaining.get(s)! - 1;
    remaining.set(s, left);
    if (left === 0 && opts.releaseHessians) s.second.length = 0;
  }
  opts.onProgress?.({ layer: '', done: todo.length, total: todo.length });
  return (req) => {
    const found = results.get(requestKey(req));
    if (!found) return undefined;
    const q = Int32Array.from(found.q, (v) => v + found.qOffset);
    return { quantized: { ...found.quantized, q }, record: found.record };
  };
}

/** One hook from several (grouped statistics passes): the first that has a result for the request. */
export function mergeGptqHooks(hooks: readonly GptqHook[]): GptqHook {
  return (req) => {
    for (const h of hooks) {
      const r = h(req);
      if (r) return r;
    }
    return undefined;
  };
}
