import type { GraphIndex, GraphScope, NodeProto, TensorProto } from '../onnx/index.js';
import type { LayerRecord } from '../documents/index.js';

/**
 * Mark-then-emit: op rules look at one node and return plain edits; `emit` applies all of them
 * once, deduplicated. Nodes are the original model's NodeProto objects (identity), scopes the
 * original GraphIndex scopes.
 */

/** How one weight is stored. */
export interface WeightSpec {
  readonly bits: 4 | 8;
  /** Symmetric signed (zero point 0) or asymmetric unsigned with zero points. */
  readonly symmetric: boolean;
  readonly granularity: 'tensor' | 'channel' | 'block';
  readonly axis: number;
  readonly blockSize?: number;
  /** Per-group clip search minimising ‖Q(w) − w‖² (`--weight-clip mse`). */
  readonly clip: 'none' | 'mse';
  /** The weight is multiplied by this before quantizing (Gemm alpha folded into the weight). */
  readonly multiplier?: number;
  /** 4-bit only: com.microsoft DequantizeLinear (int4 at any opset, no blocks) instead of opset-21 DequantizeLinear. */
  readonly dqDomain?: 'com.microsoft';
}

export type Edit =
  /** Quantize a runtime tensor: one QuantizeLinear, one DequantizeLinear per consumer. `shareWith` reuses another tensor's scale/zero point (pass-through ops). */
  | { readonly kind: 'qdq-activation'; readonly scope: GraphScope; readonly tensor: string; readonly shareWith?: string }
  /** Remove a Relu/Clip whose clamping the uint8 QuantizeLinear of its output already does; its producer writes the output directly. */
  | { readonly kind: 'fold-activation'; readonly scope: GraphScope; readonly node: NodeProto; readonly producer: NodeProto }
  /** Store input `input` of `node` (a constant) as integers behind a DequantizeLinear. */
  | { readonly kind: 'qdq-weight'; readonly scope: GraphScope; readonly node: NodeProto; readonly input: number; readonly spec: WeightSpec }
  /** int32 bias: scale = s(activation) · s(weight)[c] · multiplier, zero point 0. */
  | {
      readonly kind: 'int32-bias';
      readonly scope: GraphScope;
      readonly node: NodeProto;
      readonly input: number;
      readonly activation: string;
      readonly weightInput: number;
      readonly multiplier?: number;
    }
  /** Set a Gemm's alpha and/or beta to 1 (their values were folded into the weight and bias edits). */
  | { readonly kind: 'gemm-unit-scalars'; readonly scope: GraphScope; readonly node: NodeProto; readonly alpha: boolean; readonly beta: boolean }
  /** Weight-only block quantization of a MatMul/Gemm with a constant weight: MatMulNBits or DequantizeLinear(int4, block_size) → MatMul. */
  | {
      readonly kind: 'matmul-nbits';
      readonly scope: GraphScope;
      readonly node: NodeProto;
      readonly bits: 4 | 8;
      readonly blockSize: number;
      readonly symmetric: boolean;
      readonly clip: 'none' | 'mse';
      readonly accuracyLevel: number;
      readonly format: 'nbits' | 'qdq';
    }
  /** Dynamic W8: a MatMul/Gemm with a constant weight becomes com.microsoft DynamicQuantizeMatMul. */
  | { readonly kind: 'dynamic-matmul'; readonly scope: GraphScope; readonly node: NodeProto; readonly clip: 'none' | 'mse' }
  /** A Gather from a large constant table becomes com.microsoft GatherBlockQuantized (uint8 data, blocks along the last axis). */
  | { readonly kind: 'gather-quantized'; readonly scope: GraphScope; readonly node: NodeProto; readonly bits: 4 | 8; readonly blockSize: number }
  /** What happened to a layer (or why it stayed float): summary only, no graph change. */
  | { readonly kind: 'layer'; readonly record: LayerRecord };

export type EditKind = Edit['kind'];

/** The usable calibrated range of a tensor, or why there is none. */
export type RangeLookup =
  | { readonly ok: true; readonly range: readonly [number, number] }
  | {
      readonly ok: false;
      readonly reason: string;
      /**
       * The tensor must stay at higher precision (a mask fill, non-finite values, or an expected SQNR
       * below the floor): no dynamic quantization of it either. Unset: there is just no range.
       */
      readonly keepFloat?: boolean;
    };

/** Per-layer settings after merging plan defaults, the layer's entry and the exclusion flags. */
export interface ResolvedLayerPlan {
  readonly bits: 4 | 8 | 16 | 'float';
  readonly granularity?: 'tensor' | 'channel' | 'block' | 'group';
  readonly blockSize: number;
  readonly symmetric?: boolean;
  readonly clip: 'none' | 'mse';
  readonly algorithm: 'rtn' | 'gptq';
  /** The plan has an entry for this layer (not only defaults): weight-only convolutions need one. */
  readonly isListed: boolean;
  /** Why the layer is float when excluded by a flag or the plan. */
  readonly reason?: string;
}

/** Everything a rule may read. Rules never mutate anything. */
export interface RuleContext {
  readonly index: GraphIndex;
  readonly scope: GraphScope;
  /** Stable node id (QuantizableLayer.id form). */
  readonly nodeId: string;
  readonly mode: 'static' | 'dynamic' | 'weight-only';
  readonly activationType: 'uint8' | 'int8';
  readonly int4Format: 'nbits' | 'qdq';
  readonly accuracyLevel: number;
  /** Default-domain opset of the model. */
  readonly opset: number;
  /** Fold Relu/Clip into the producer's quantized output (asymmetric activations only). */
  readonly foldActivations: boolean;
  /** Scalar Add/Mul and Mul of two quantized tensors (hard-swish, SE gates) as QLinearAdd/QLinearMul. */
  readonly integerElementwise: boolean;
  /** int4 DequantizeLinear (opset 21) is available, possibly after raising the opset. */
  readonly hasInt4Qdq: boolean;
  /** This node's plan (layers and other ops alike; non-layer ops only look at bits and reason). */
  readonly plan: ResolvedLayerPlan;
  range(tensor: string): RangeLookup;
  /** Whether input `input` of this node may be stored as `spec`: not ok when its measured SQNR is below the floor. */
  weightPrecision(input: number, spec: WeightSpec): RangeLookup;
  /** True when an earlier node (topological order) already marked `tensor` for Q/DQ. */
  isQuantized(tensor: string): boolean;
  constant(tensor: string): TensorProto | undefined;
  /** Consumers in this scope. */
  consumers(tensor: string): readonly NodeProto[];
  isGraphOutput(tensor: string): boolean;
}

export interface OpRule {
  readonly opTypes: readonly string[];
  edits(node: NodeProto, ctx: RuleContext): Edit[];
}
