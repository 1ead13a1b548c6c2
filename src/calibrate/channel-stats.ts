/**
 * Per-channel activation statistics (min, max, Σx² and the element count of each channel along axis 1)
 * of a few tensors, computed inside the graph: x → ReduceMin / ReduceMax / ReduceSumSquare over every
 * axis but 1 (keepdims 0, so each result is [C]) plus Shape(x) for the count. Only the small [C] vectors
 * leave onnxruntime, so asking for them costs about one extra reduction pass over the named tensors.
 * Used where one per-tensor range hides channels of very different sizes (cross-layer equalisation,
 * the per-channel SQNR check of a depthwise convolution's input).
 */
import { create } from '@bufbuild/protobuf';
import type { Dataset } from '../data/index.js';
import { InputError } from '../errors.js';
import { NameAllocator, ValueInfoProtoSchema, makeNode, opsetVersion, tensorToProto, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { Session } from '../runtime/index.js';
import { makeTensor, toFloat32 } from '../tensor/index.js';

export interface ChannelStats {
  /** Values seen per channel (the same for every channel). */
  count: number;
  min: Float64Array;
  max: Float64Array;
  sumSquares: Float64Array;
}

export interface ChannelTensor {
  name: string;
  /** The tensor's rank (≥ 2); channels are axis 1. */
  rank: number;
}

/** abs-max of channel c. */
export function channelAbsMax(s: ChannelStats, c: number): number {
  return Math.max(Math.abs(s.min[c]), Math.abs(s.max[c]));
}

/** A copy of `model` that also outputs, per tensor, its per-channel min/max/Σx² ([C] each) and its shape. */
export function withChannelReductions(model: Model, tensors: readonly ChannelTensor[]): { model: Model; outputs: Record<string, { min: string; max: string; sumSquares: string; shape: string }> } {
  const graph = model.proto.graph!;
  const names = new NameAllocator(graph);
  const opset = opsetVersion(model.proto) ?? 1;
  const nodes: NodeProto[] = [...graph.node];
  const inits: TensorProto[] = [];
  const outputs: Record<string, { min: string; max: string; sumSquares: string; shape: string }> = {};
  const axesByRank = new Map<number, string>();
  for (const { name, rank } of tensors) {
    if (!(rank >= 2)) throw new InputError('E_TENSOR_UNKNOWN', `per-channel statistics of "${name}": expected rank ≥ 2, got ${rank}`, { file: model.file });
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const o = { min: '', max: '', sumSquares: '', shape: names.allocate(`${name}_qtool_cshape`) };
    nodes.push(makeNode({ opType: 'Shape', inputs: [name], outputs: [o.shape], name: o.shape }));
    for (const [stat, op] of [['min', 'ReduceMin'], ['max', 'ReduceMax'], ['sumSquares', 'ReduceSumSquare']] as const) {
      const out = names.allocate(`${name}_qtool_c${stat}`);
      // ReduceMin/ReduceMax take axes as an input from opset 18 (ReduceSumSquare too).
      if (opset >= 18) {
        let a = axesByRank.get(rank);
        if (!a) {
          a = names.allocate(`qtool_channel_axes_${rank}`);
          axesByRank.set(rank, a);
          inits.push(tensorToProto(a, makeTensor('int64', [axes.length], BigInt64Array.from(axes.map(BigInt)))));
        }
        nodes.push(makeNode({ opType: op, inputs: [name, a], outputs: [out], name: out, attrs: { keepdims: 0 } }));
      } else nodes.push(makeNode({ opType: op, inputs: [name], outputs: [out], name: out, attrs: { keepdims: 0, axes } }));
      o[stat] = out;
    }
    outputs[name] = o;
  }
  const extra = Object.values(outputs).flatMap((o) => [o.min, o.max, o.sumSquares, o.shape]);
  const newGraph = { ...graph, node: nodes, initializer: [...graph.initializer, ...inits], output: [...graph.output, ...extra.map((name) => create(ValueInfoProtoSchema, { name }))] };
  return { model: { ...model, proto: { ...model.proto, graph: newGraph } }, outputs };
}

/** Per-channel statistics of `tensors` over the dataset (up to maxSamples), in one session. */
export async function channelStatistics(model: Model, dataset: Dataset, tensors: readonly ChannelTensor[], opts: { batchSize?: number; maxSamples?: number } = {}): Promise<Map<string, ChannelStats>> {
  const stats = new Map<string, ChannelStats>();
  if (tensors.length === 0) return stats;
  const { model: m, outputs } = withChannelReductions(model, tensors);
  const fetch = Object.values(outputs).flatMap((o) => [o.min, o.max, o.sumSquares, o.shape]);
  const session = await Session.open(m, { optimization: 'disabled', name: model.file });
  let done = 0;
  try {
    for await (const feeds of dataset.batches(opts.batchSize ?? 8)) {
      const r = await session.run(feeds, fetch);
      for (const { name } of tensors) {
        const o = outputs[name];
        const [lo, hi, ss] = [toFloat32(r[o.min]), toFloat32(r[o.max]), toFloat32(r[o.sumSquares])];
        const shape = Array.from(r[o.shape].data as BigInt64Array, Number);
        const c = lo.length;
        const count = shape.reduce((a, b) => a * b, 1) / Math.max(1, shape[1]);
        let s = stats.get(name);
        if (!s) stats.set(name, (s = { count: 0, min: new Float64Array(c).fill(Infinity), max: new Float64Array(c).fill(-Infinity), sumSquares: new Float64Array(c) }));
        if (s.min.length !== c) continue;
        s.count += count;
        for (let i = 0; i < c; i++) {
          s.min[i] = Math.min(s.min[i], lo[i]);
          s.max[i] = Math.max(s.max[i], hi[i]);
          s.sumSquares[i] += ss[i];
        }
      }
      done += dataset.samplesIn(feeds);
      if (opts.maxSamples !== undefined && done >= opts.maxSamples) break;
    }
  } finally {
    await session.release();
  }
  return stats;
}
