import type { LayerPlan, Plan } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { nodeId, type GraphIndex } from '../onnx/index.js';
import type { ResolvedLayerPlan } from './edits.js';

export interface Selection {
  readonly excludeOps?: readonly string[];
  readonly excludeNodes?: readonly string[];
  readonly includeNodes?: readonly string[];
}

/**
 * Every --include-node / --exclude-node name must be a node name or layer id of the model: a typo
 * would otherwise quantize the layer the user meant to keep float (or, with --include-node, nothing).
 */
export function checkSelection(index: GraphIndex, sel: Selection, quantizedOps: readonly string[]): void {
  // An op type no rule quantizes (a typo such as "conv") would silently exclude nothing.
  for (const op of sel.excludeOps ?? []) {
    if (!quantizedOps.includes(op)) {
      throw new UsageError('E_FLAG', `--exclude-op ${op}: expected an op type qtool quantizes (${[...quantizedOps].sort().join(', ')}; case-sensitive), got one it never touches`);
    }
  }
  const lists = [['--include-node', sel.includeNodes], ['--exclude-node', sel.excludeNodes]] as const;
  if (!lists.some(([, l]) => l && l.length > 0)) return;
  const known = new Set<string>();
  for (const ref of index.allNodes()) {
    known.add(nodeId(ref.node, ref.graph, ref.position));
    if (ref.node.name) known.add(ref.node.name);
  }
  for (const [flag, list] of lists) {
    for (const name of list ?? []) {
      if (!known.has(name)) throw new UsageError('E_FLAG', `${flag} ${name}: expected a node name or layer id of the model (qtool inspect lists the layers), got no node of that name`);
    }
  }
}

/**
 * A node's effective settings: --include-node / --exclude-op / --exclude-node first, then the
 * plan entry keyed by layer id (or node name), merged over the plan defaults.
 */
export function resolveLayerPlan(plan: Plan, id: string, name: string, opType: string, sel: Selection): ResolvedLayerPlan {
  const named = (list?: readonly string[]) => Boolean(list && (list.includes(id) || (name !== '' && list.includes(name))));
  const base = (reason: string): ResolvedLayerPlan => ({ bits: 'float', blockSize: 32, clip: 'none', algorithm: 'rtn', isListed: false, reason });
  if (sel.includeNodes && sel.includeNodes.length > 0 && !named(sel.includeNodes)) return base('not selected by --include-node');
  if (sel.excludeOps?.includes(opType)) return base(`--exclude-op ${opType}`);
  if (named(sel.excludeNodes)) return base('--exclude-node');
  const entry: LayerPlan | undefined = plan.layers[id] ?? (name ? plan.layers[name] : undefined);
  const merged: LayerPlan = { ...plan.defaults, ...(entry ?? {}) };
  return {
    bits: merged.bits,
    granularity: merged.granularity,
    blockSize: merged.blockSize ?? 32,
    symmetric: merged.symmetric,
    clip: merged.rounding === 'mse-clip' ? 'mse' : 'none',
    algorithm: merged.algorithm ?? 'rtn',
    isListed: entry !== undefined,
    ...(merged.bits === 'float' ? { reason: entry ? 'plan: float for this layer' : 'plan: float by default' } : {}),
  };
}

export interface UniformPlanOptions {
  bits: 4 | 8;
  mode: Plan['mode'];
  blockSize?: number;
  groupSize?: number;
  symmetric?: boolean;
  weightClip?: 'none' | 'mse';
  algorithm?: 'rtn' | 'gptq';
}

/** The plan `qtool quantize` uses when no --plan is given: every layer at the same settings. */
export function uniformPlan(o: UniformPlanOptions): Plan {
  const defaults: LayerPlan = { bits: o.bits };
  if (o.bits === 4) {
    defaults.granularity = 'block';
    defaults.blockSize = o.blockSize ?? 32;
  } else if (o.groupSize) {
    defaults.granularity = 'group';
    defaults.blockSize = o.groupSize;
  } else {
    defaults.granularity = 'channel';
  }
  if (o.symmetric !== undefined) defaults.symmetric = o.symmetric;
  defaults.rounding = o.weightClip === 'mse' ? 'mse-clip' : 'nearest';
  if (o.algorithm && o.algorithm !== 'rtn') defaults.algorithm = o.algorithm;
  return { kind: 'qtool.plan', version: 1, mode: o.mode, defaults, layers: {} };
}
