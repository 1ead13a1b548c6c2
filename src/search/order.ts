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
 * Which terms refine the order: 'combined' (ΔΩ and leave-one-out break ties between equal measured
 * losses) or 'measured' (leave-one-out only; Ω is left out). Static-mode searches use 'measured' when
 * the measured terms come from real static rewrites: Ω sees weight rounding only, while the loss of a
 * static layer is mostly its activation quantization.
 */
export type OrderBy = 'combined' | 'measured';

/**
 * Order layers for demoting `from` → `to`, most sensitive first.
 *
 * The rule (issue 11: decide by measurement): the primary key is the measured loss increase of
 * demoting that layer alone, measured(to) − measured(from) — with the real rewrite when the report's
 * measuredPath is 'rewrite' (weights and, in static mode, the layer's input activations). A layer whose
 * measured increase is ≤ 0 did no measurable harm alone; all such layers tie at 0. Ties (equal measured
 * increases, and every layer when the report has no measured losses) are broken by the combined score
 * (quant/combineScores) of the refining terms — leave-one-out recovery when the report has it, and ΔΩ
 * = Ω(to) − Ω(from) unless `by` is 'measured' — and then by the report's layer order. Ω and
 * leave-one-out therefore never move a layer above one that measured more harmful alone.
 */
export function orderLayers(layers: readonly ReportLayer[], from: LayerBits, to: LayerBits, by: OrderBy = 'combined'): { id: string; score: number }[] {
  const measured = layers.map((l) => {
    const a = measuredAt(l, to);
    const b = measuredAt(l, from);
    return a === undefined || b === undefined || !Number.isFinite(a - b) ? undefined : Math.max(0, a - b);
  });
  const primary = measured.map((m) => m ?? 0);
  const refine: number[][] = [];
  if (by === 'combined') refine.push(layers.map((l) => (omegaAt(l, to) ?? 0) - (omegaAt(l, from) ?? 0)));
  if (layers.some((l) => l.leaveOneOut)) refine.push(layers.map((l) => l.leaveOneOut?.recovered ?? 0));
  const tieBreak = refine.length > 0 ? combineScores(refine) : layers.map(() => 0);
  // The reported score: the measured increase's share of the total (the primary key), or the tie-break score when nothing was measured.
  const total = primary.reduce((a, b) => a + b, 0);
  const score = total > 0 ? primary.map((m) => m / total) : tieBreak;
  return layers
    .map((l, i) => ({ id: l.id, score: score[i], i }))
    .sort((a, b) => primary[b.i] - primary[a.i] || tieBreak[b.i] - tieBreak[a.i] || a.i - b.i)
    .map(({ id, score }) => ({ id, score }));
}
