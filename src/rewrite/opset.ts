import { walkGraphs, opsetVersion, type ModelProto } from '../onnx/index.js';

/**
 * Default-domain ops whose meaning or inputs changed at a given opset in a way that is not
 * backward compatible (attributes moved to inputs, semantics changed, op removed). Version bumps
 * that only add types or optional attributes with compatible defaults are not listed.
 */
export const BREAKING_OPSETS: ReadonlyMap<string, readonly number[]> = new Map<string, readonly number[]>([
  ['Clip', [11]],
  ['Slice', [10]],
  ['Squeeze', [13]],
  ['Unsqueeze', [13]],
  ['Split', [13, 18]],
  ['ReduceSum', [13]],
  ['ReduceMean', [18]],
  ['ReduceMax', [18]],
  ['ReduceMin', [18]],
  ['ReduceProd', [18]],
  ['ReduceL1', [18]],
  ['ReduceL2', [18]],
  ['ReduceLogSum', [18]],
  ['ReduceLogSumExp', [18]],
  ['ReduceSumSquare', [18]],
  ['Softmax', [13]],
  ['LogSoftmax', [13]],
  ['Hardmax', [13]],
  ['Pad', [11]],
  ['Resize', [11]],
  ['Upsample', [10]],
  ['TopK', [10]],
  ['BatchNormalization', [9, 14]],
  ['Dropout', [12]],
  ['Scatter', [11]],
  ['Scan', [9]],
  ['DequantizeLinear', [21]],
  ['QuantizeLinear', [21]],
  ['GroupNormalization', [21]],
]);

/** Op types that stop the default-domain opset being raised from `from` to `to`. */
export function opsetRaiseBlockers(model: ModelProto, to: number): string[] {
  const from = opsetVersion(model, '') ?? 1;
  const blockers = new Set<string>();
  for (const g of walkGraphs(model.graph!)) {
    for (const n of g.node) {
      if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
      const breaks = BREAKING_OPSETS.get(n.opType);
      if (breaks && breaks.some((v) => v > from && v <= to)) blockers.add(n.opType);
    }
  }
  return [...blockers].sort();
}

/** Can the default-domain opset be raised to `to` without touching any existing node? */
export function canRaiseOpset(model: ModelProto, to: number): boolean {
  const from = opsetVersion(model, '') ?? 1;
  return from >= to || opsetRaiseBlockers(model, to).length === 0;
}
