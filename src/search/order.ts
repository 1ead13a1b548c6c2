import type { LayerBits, SensitivityReport } from '../documents/index.js';
import { combineScores } from '../quant/index.js';

type ReportLayer = SensitivityReport['layers'][number];

/** Ω of a layer at a level: 0 for float, the report's value for an analysed bit width, undefined otherwise. */
export function omegaAt(layer: ReportLayer, bits: LayerBits): number | undefined {
  if (bits === 'float') return 0;
  return layer.bits.find((e) => e.bits === bits)?.omega;
}

/** Measured single-layer loss at a level (0 for float). */
export function measuredAt(layer: ReportLayer, bits: LayerBits): number | undefined {
  if (bits === 'float') return 0;
  return layer.bits.find((e) => e.bits === bits)?.measuredLoss;
}

/** Stored weight bytes at a level (float: 4 bytes/weight). */
export function sizeAt(layer: ReportLayer, bits: LayerBits): number | undefined {
  if (bits === 'float') return layer.floatBytes;
  return layer.bits.find((e) => e.bits === bits)?.sizeBytes;
}

/**
 * Which terms order the layers: 'combined' (ΔΩ, measured, leave-one-out) or 'measured' (the measured
 * single-layer loss increase and leave-one-out only; Ω is left out). Static-mode searches use
 * 'measured' when the measured terms come from real static rewrites: Ω sees weight rounding only,
 * while the loss of a static layer is mostly its activation quantization.
 */
export type OrderBy = 'combined' | 'measured';

/**
 * Order layers for demoting `from` → `to`, most sensitive first, by the combined score
 * (quant/combineScores) of three terms: ΔΩ = Ω(to) − Ω(from), the measured single-layer loss increase
 * measured(to) − measured(from), and the leave-one-out recovery when the report has it ('measured':
 * the last two only). Ties keep the report's layer order.
 */
export function orderLayers(layers: readonly ReportLayer[], from: LayerBits, to: LayerBits, by: OrderBy = 'combined'): { id: string; score: number }[] {
  const dOmega = layers.map((l) => (omegaAt(l, to) ?? 0) - (omegaAt(l, from) ?? 0));
  const dMeasured = layers.map((l) => (measuredAt(l, to) ?? 0) - (measuredAt(l, from) ?? 0));
  const terms = by === 'measured' ? [dMeasured] : [dOmega, dMeasured];
  if (layers.some((l) => l.leaveOneOut)) terms.push(layers.map((l) => l.leaveOneOut?.recovered ?? 0));
  const score = combineScores(terms);
  return layers
    .map((l, i) => ({ id: l.id, score: score[i], i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .map(({ id, score }) => ({ id, score }));
}
