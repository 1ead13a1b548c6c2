/**
 * Which tensors calibration observes for a plan, and whether a given table covers them. Shared by
 * `qtool quantize`, `qtool calibrate` and `qtool search` (declare statistics, collect once).
 */
import { calibrationTensors } from '../calibrate/index.js';
import type { CalibrationTable, LayerBits, Plan } from '../documents/index.js';
import { InputError } from '../errors.js';
import { quantizableLayers, type Model, type GraphIndex } from '../onnx/index.js';
import { rangesNeeded, uniformPlan, type ApplyPlanOptions } from '../rewrite/index.js';
import { layerPlan } from '../search/index.js';

/**
 * The main-graph tensors calibration must observe for `applyPlan(model, plan, table, opts)`: the
 * ranges the rewrite reads (rangesNeeded) that calibration can observe (main graph, float), in
 * topological order.
 */
export function planCalibrationTensors(model: Model, plan: Plan, opts: ApplyPlanOptions = {}): string[] {
  const needed = new Set(rangesNeeded(model, plan, opts));
  return calibrationTensors(model).filter((t) => needed.has(t));
}

/**
 * The tensors any static plan can read ranges for, whatever its rewrite options: the uniform 8-bit
 * static plan (every layer quantized reads the most) with and without Relu/Clip folding (int8
 * activations read the unfolded set). `qtool calibrate` observes these by default, so its table
 * serves every later `qtool quantize --calib`.
 */
export function staticPlanCalibrationTensors(model: Model): string[] {
  const plan = uniformPlan({ bits: 8, mode: 'static' });
  const needed = new Set([...rangesNeeded(model, plan), ...rangesNeeded(model, plan, { foldActivations: false })]);
  return calibrationTensors(model).filter((t) => needed.has(t));
}

/** The static plan of a per-layer assignment (layers not listed stay float), as searchPlan writes plans. */
export function staticPlan(a: Readonly<Record<string, LayerBits>>, blockSize: number): Plan {
  const layers = Object.fromEntries(Object.entries(a).map(([id, b]) => [id, layerPlan(b, blockSize)]));
  return { kind: 'qtool.plan', version: 1, mode: 'static', defaults: { bits: 'float' }, layers };
}

/** The static plan with every quantizable layer at 8 bits: it reads every range any plan of the search reads. */
export function allInt8Plan(index: GraphIndex, blockSize: number): Plan {
  return staticPlan(Object.fromEntries(quantizableLayers(index).map((l) => [l.id, 8 as const])), blockSize);
}

export interface TableCoverRequest {
  /** The plan the table must serve, and the rewrite options it is applied with. */
  plan: Plan;
  rewrite?: ApplyPlanOptions;
  /**
   * 'plan-tables': only tables calibrated for a plan ('plan') or for static plans ('plans') are checked
   * (a table over 'all' tensors or an explicit list is taken as given; `qtool quantize --calib`);
   * 'always': every table (`qtool search --calib`, which evaluates many plans).
   */
  check: 'plan-tables' | 'always';
  /** How to fix a missing range, for the message. */
  fix: string;
}

/**
 * A table must hold every range the rewrite of `req.plan` reads; a missing one would silently leave a
 * layer's activations float. Throws InputError E_CALIB_INCOMPLETE naming `file`.
 */
export function checkTableCovers(table: CalibrationTable, file: string, model: Model, req: TableCoverRequest): void {
  const from = table.settings.tensors;
  if (req.check === 'plan-tables' && from !== 'plan' && from !== 'plans') return;
  const missing = planCalibrationTensors(model, req.plan, req.rewrite).filter((t) => !table.tensors[t]);
  if (missing.length === 0) return;
  const observed = from === 'plan' ? 'own plan' : 'static plans';
  throw new InputError(
    'E_CALIB_INCOMPLETE',
    `calibration table: expected a range for every tensor ${req.check === 'always' ? 'a static plan' : 'this plan'} reads, got none for ${missing.length} (e.g. "${missing[0]}"${req.check === 'plan-tables' ? `; the table observed only the tensors its ${observed} read` : ''}): ${req.fix}`,
    { file },
  );
}
