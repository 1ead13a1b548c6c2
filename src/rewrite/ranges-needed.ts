import type { Plan } from '../documents/index.js';
import type { Model } from '../onnx/index.js';
import { staticFold, type ApplyPlanOptions } from './apply-plan.js';
import { emissionRanges, markEdits, markSettings, sharesOf } from './mark.js';

/**
 * The activation tensors whose calibrated ranges `applyPlan(model, plan, table, opts)` reads, in
 * the order it first reads them: the mark phase runs with an accessor that records every lookup and
 * answers "usable" (the largest set: a range that turns out unusable only makes the rules skip
 * tensors, never read others), then the scale sources emission reads are added (the same
 * `emissionRanges` applyPlan checks its reads against). A table restricted to these names gives
 * the same model byte for byte. Names from every graph (subgraph tensors included); dynamic and
 * weight-only plans read none.
 */
export function rangesNeeded(input: Model, plan: Plan, opts: ApplyPlanOptions = {}): string[] {
  // The same folded model applyPlan rewrites: a folded conv writes its last folded op's output, a
  // tensor of the original model with the same values, so the original model can be calibrated on it.
  const { model, index } = staticFold(input, plan, opts);
  const seen = new Set<string>();
  const edits = markEdits(index, plan, markSettings(model, opts), (_scope, tensor) => {
    seen.add(tensor);
    return { ok: true, range: [0, 1] };
  });
  for (const set of emissionRanges(edits, sharesOf(edits)).values()) for (const t of set) seen.add(t);
  return [...seen];
}
