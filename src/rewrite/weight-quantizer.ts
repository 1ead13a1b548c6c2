import type { LayerRecord } from '../documents/index.js';
import type { QuantizedWeight, WeightQuantSpec } from '../quant/index.js';

/**
 * A replacement for round-to-nearest, injected by the caller (GPTQ from the pipeline's layer statistics):
 * given the weight exactly as the emitter is about to quantize it (layout `dims`, spec, Gemm alpha
 * folded in) and the round-to-nearest result, return a QuantizedWeight of the same shape and type, or
 * undefined to keep round-to-nearest. Called once per stored weight (shared weights: first consumer).
 */
export interface WeightQuantizerRequest {
  /** QuantizableLayer id of the consuming node. */
  layer: string;
  /** The node's name ('' when unnamed). */
  name: string;
  opType: string;
  /** The weight tensor's name in the original model. */
  weight: string;
  w: Float32Array;
  dims: readonly number[];
  spec: WeightQuantSpec;
  rtn: QuantizedWeight;
}

export type LayerAlgorithm = NonNullable<LayerRecord['algorithm']>;

export interface WeightQuantizerResult {
  quantized: QuantizedWeight;
  /** What goes into the layer's summary record. */
  record: { algorithm: LayerAlgorithm; reconstructionError?: { rtn: number; after: number } };
}

export type WeightQuantizer = (req: WeightQuantizerRequest) => WeightQuantizerResult | undefined;
