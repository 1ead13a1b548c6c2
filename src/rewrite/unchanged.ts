import type { LayerRecord } from '../documents/index.js';

/**
 * No silent no-op (issue 11). A run that leaves at least half of the model's layer weight bytes
 * float has not done what `quantize` was asked for: the output is (nearly) the input. Half is the
 * documented share: below it the larger part of the model was left unchanged, whatever the reason.
 */
export const MIN_QUANTIZED_WEIGHT_SHARE = 0.5;

/** Share (0..1) of the layers' float weight bytes that the rewrite quantized (1 when there are no layers). */
export function quantizedWeightShare(layers: readonly LayerRecord[]): number {
  let total = 0;
  let quantized = 0;
  for (const l of layers) {
    const b = l.weightBytes?.before ?? 0;
    total += b;
    if (l.bits !== 'float') quantized += b;
  }
  return total > 0 ? quantized / total : 1;
}

/** What to run instead, from the reasons the float layers give (the most weight bytes first). */
function suggestion(reason: string, mode: string, bits: number): string {
  if (/dynamic mode keeps convolutions float/.test(reason)) return 'convolutions need static mode: pass --data <calibration samples> (or --calib)';
  if (/weight-only mode/.test(reason) && bits === 4) return '--bits 4 quantizes MatMul/Gemm weights; for convolutions use --bits 8 with --data (static INT8)';
  if (/--include-node|--exclude-op|--exclude-node/.test(reason)) return 'the selection flags left them float; widen --include-node or drop the exclusions';
  if (/expected SQNR|measured SQNR/.test(reason)) return 'measured precision kept them float (see the per-layer reasons); check the calibration data, or lower --min-tensor-sqnr';
  if (/plan/.test(reason)) return 'the plan keeps them float; edit the plan';
  return mode === 'static' ? 'see the per-layer reasons' : 'try static mode with --data';
}

/**
 * The top-level warning when less than MIN_QUANTIZED_WEIGHT_SHARE of the weight bytes were quantized:
 * how much, the main reason (by float weight bytes) and what to run instead; undefined otherwise.
 */
export function unchangedWarning(layers: readonly LayerRecord[], mode: string, bits: number): string | undefined {
  if (layers.length === 0) return 'nothing was quantized: the model has no layer qtool quantizes (Conv, ConvTranspose, MatMul, Gemm with a constant weight), so the output is the input unchanged; pass --allow-unchanged to accept it';
  const share = quantizedWeightShare(layers);
  if (share >= MIN_QUANTIZED_WEIGHT_SHARE) return undefined;
  const byReason = new Map<string, number>();
  for (const l of layers) {
    if (l.bits !== 'float') continue;
    const r = l.reason ?? 'float';
    byReason.set(r, (byReason.get(r) ?? 0) + (l.weightBytes?.before ?? 0));
  }
  const [top] = [...byReason].sort((a, b) => b[1] - a[1]);
  const floats = layers.filter((l) => l.bits === 'float').length;
  const what = share === 0 ? 'nothing was quantized: the output is the input model unchanged' : `only ${(100 * share).toFixed(1)}% of the weight bytes were quantized`;
  return `${what} (${floats} of ${layers.length} layers float${top ? `, mostly: ${top[0]}` : ''}); ${suggestion(top?.[0] ?? '', mode, bits)}; pass --allow-unchanged to accept it`;
}
