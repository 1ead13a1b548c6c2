import type { Plan } from '../documents/index.js';
import { nodeId, opsetVersion, type GraphIndex, type GraphScope, type Model, type NodeProto } from '../onnx/index.js';
import type { Edit, RangeLookup, RuleContext, WeightSpec } from './edits.js';
import { canRaiseOpset } from './opset.js';
import { checkSelection, resolveLayerPlan, type Selection } from './plan.js';
import { RULES } from './rules/index.js';

/** The rewrite settings the mark phase depends on (applyPlan's options, resolved). */
export interface MarkSettings {
  readonly activationType: 'uint8' | 'int8';
  readonly int4Format: 'nbits' | 'qdq';
  readonly accuracyLevel: number;
  readonly opset: number;
  readonly foldActivations: boolean;
  readonly integerElementwise: boolean;
  readonly hasInt4Qdq: boolean;
  readonly selection: Selection;
}

export interface MarkOptions extends Selection {
  activationType?: 'uint8' | 'int8';
  int4Format?: 'nbits' | 'qdq';
  accuracyLevel?: number;
  foldActivations?: boolean;
  integerElementwise?: boolean;
}

export function markSettings(model: Model, opts: MarkOptions): MarkSettings {
  const opset = opsetVersion(model.proto, '') ?? 1;
  return {
    activationType: opts.activationType ?? 'uint8',
    int4Format: opts.int4Format ?? 'nbits',
    accuracyLevel: opts.accuracyLevel ?? 4,
    opset,
    foldActivations: opts.foldActivations ?? true,
    integerElementwise: opts.integerElementwise ?? false,
    hasInt4Qdq: opset >= 21 || canRaiseOpset(model.proto, 21),
    selection: { excludeOps: opts.excludeOps, excludeNodes: opts.excludeNodes, includeNodes: opts.includeNodes },
  };
}

/**
 * The one way the rewrite reads a calibrated range: mark (rules asking whether a tensor has a usable
 * range) and emit (scales and zero points) both call it, so `rangesNeeded` can list every tensor a
 * plan reads by running the mark phase with a recording accessor.
 */
export type RangeAccessor = (scope: GraphScope, tensor: string) => RangeLookup;

/**
 * Mark: every op rule looks at one node (topological order, every graph) and returns plain edits.
 * Rules read ranges only through `range` (and only ask whether one is usable); a usable answer can
 * only make later rules read more tensors, never others, which is what `rangesNeeded` relies on.
 */
/** Whether a constant weight of `node` may be stored as `spec` (measured SQNR over the floor), or why not. */
export type WeightCheck = (scope: GraphScope, node: NodeProto, input: number, spec: WeightSpec) => RangeLookup;

export function markEdits(index: GraphIndex, plan: Plan, s: MarkSettings, range: RangeAccessor, weightCheck?: WeightCheck): Edit[] {
  checkSelection(index, s.selection, [...RULES.keys()]);
  const edits: Edit[] = [];
  const marked = new Map<GraphScope, Set<string>>();
  for (const ref of index.allNodes()) {
    const node = ref.node;
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    const rule = RULES.get(node.opType);
    if (!rule) continue;
    const id = nodeId(node, ref.graph, ref.position);
    const scope = ref.graph;
    const marks = marked.get(scope) ?? new Set<string>();
    marked.set(scope, marks);
    const ctx: RuleContext = {
      index,
      scope,
      nodeId: id,
      mode: plan.mode,
      activationType: s.activationType,
      int4Format: s.int4Format,
      accuracyLevel: s.accuracyLevel,
      opset: s.opset,
      foldActivations: s.foldActivations,
      integerElementwise: s.integerElementwise,
      hasInt4Qdq: s.hasInt4Qdq,
      plan: resolveLayerPlan(plan, id, node.name, node.opType, s.selection),
      range: (t) => range(scope, t),
      weightPrecision: (input, spec) => (weightCheck ? weightCheck(scope, node, input, spec) : { ok: true, range: [0, 0] }),
      isQuantized: (t) => marks.has(t),
      constant: (t) => index.constant(t, scope),
      consumers: (t) => (scope.consumers.get(t) ?? []).map((r) => r.node),
      isGraphOutput: (t) => scope.outputs.has(t),
    };
    for (const e of rule.edits(node, ctx)) {
      edits.push(e);
      if (e.kind === 'qdq-activation') marks.add(e.tensor);
    }
  }
  return edits;
}

/** Follow `shareWith` links to the tensor whose range sets the scale. */
function resolveShare(m: ReadonlyMap<string, string | undefined> | undefined, t: string): string {
  let cur = t;
  for (let guard = 0; m?.get(cur) && guard < 1000; guard++) cur = m.get(cur)!;
  return cur;
}

/** Per scope: every activation tensor to quantize → the tensor it shares a scale with (or undefined). */
export type Shares = Map<GraphScope, Map<string, string | undefined>>;

export function sharesOf(edits: readonly Edit[]): Shares {
  const shares: Shares = new Map();
  for (const e of edits) {
    if (e.kind !== 'qdq-activation') continue;
    const m = shares.get(e.scope) ?? new Map<string, string | undefined>();
    shares.set(e.scope, m);
    if (!m.has(e.tensor) || (e.shareWith && !m.get(e.tensor))) m.set(e.tensor, e.shareWith);
  }
  return shares;
}

/** The tensor whose range gives `t`'s scale and zero point. */
export function scaleSource(shares: Shares, scope: GraphScope, t: string): string {
  return resolveShare(shares.get(scope), t);
}

/**
 * The (scope, tensor) pairs whose ranges emission turns into scales and zero points: the scale source
 * of every quantized activation and of every int32 bias's activation. Emission reads nothing else.
 */
export function emissionRanges(edits: readonly Edit[], shares: Shares): Map<GraphScope, Set<string>> {
  const out = new Map<GraphScope, Set<string>>();
  const add = (scope: GraphScope, t: string) => {
    const set = out.get(scope) ?? new Set<string>();
    out.set(scope, set);
    set.add(scaleSource(shares, scope, t));
  };
  for (const [scope, m] of shares) for (const t of m.keys()) add(scope, t);
  for (const e of edits) if (e.kind === 'int32-bias') add(e.scope, e.activation);
  return out;
}
