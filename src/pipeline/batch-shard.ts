/**
 * Sharding a jobs file across machines (`qtool batch jobs.json --shard i/n`): every shard computes the
 * same assignment from the same jobs file and model files, runs only its own jobs, and records the
 * whole assignment in its summary so `qtool batch merge` can check that the shards agreed.
 *
 * The rule (README "Sharding"): a job's estimated cost is its model's bytes (the .onnx file plus the
 * external-data files it names) × the recipe weight below. Jobs are taken from the most to the least
 * costly (ties: by sha256 of the job id, so the order of the jobs file does not matter) and each goes
 * to the shard with the least total cost so far (ties: the lowest shard number): the classic LPT
 * greedy, within 4/3 of the best possible makespan. Same jobs file + same model sizes ⇒ the same
 * assignment on every machine and every re-run. Editing the jobs file may move jobs between shards;
 * with a shared `--cache` a moved job that already ran is a cache hit, not a recomputation.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BatchGate, BatchRecipe } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { loadModel, walkGraphs, walkTensors, isExternal, externalRef } from '../onnx/index.js';

/** 1-based shard number and the shard count (`--shard 2/4` is `{ index: 2, count: 4 }`). */
export interface ShardSpec {
  index: number;
  count: number;
}

/**
 * Relative cost of each part of a recipe, in units of "one dynamic INT8 quantization of the same
 * model". Estimates, checked against `node bench/batch-weights.mjs` (bench/RESULTS.md): the measured
 * ratios vary several-fold between weight-heavy (MLP) and activation-heavy (CNN) models, so these
 * are middles of the measured ranges, not fits. They only steer the balance; results never depend on them.
 */
export const RECIPE_WEIGHTS = {
  /** Load, rewrite and save: dynamic INT8, weight-only INT4, or static from a given table. */
  base: 1,
  /** `weightClip: 'mse'`: the per-channel/per-block clip search (measured 1–14×). */
  weightClipMse: 8,
  /** Static calibration per 256 samples, by method (measured minmax 3–6×, percentile 3–10×, entropy/mse 2–15×). */
  calibrationPer256: { minmax: 3, percentile: 4, entropy: 5, mse: 5 } as Readonly<Record<string, number>>,
  /** The float-vs-quantized fidelity check per 64 samples (measured 1–12×). */
  fidelityPer64: 2,
  /** `maxDrop`: the accuracy-guarantee search (measured 1–10× on top of calibration). */
  maxDropSearch: 5,
  /** The job's accuracy gate per 1,000 evaluation samples (measured 1–20×); 1,000 assumed without `maxSamples`. */
  gatePer1000: 5,
} as const;

/** The recipe weight of a job: see RECIPE_WEIGHTS. */
export function recipeWeight(recipe: BatchRecipe, gate?: BatchGate): number {
  const w = RECIPE_WEIGHTS;
  let weight = w.base;
  if (recipe.weightClip === 'mse') weight += w.weightClipMse;
  const calibrates = recipe.data !== undefined && recipe.calib === undefined && recipe.mode !== 'dynamic' && recipe.mode !== 'weight-only' && !(recipe.mode === 'auto' && recipe.bits === 4);
  if (calibrates) weight += (w.calibrationPer256[recipe.method] ?? w.calibrationPer256.minmax) * (recipe.samples / 256);
  if (recipe.data !== undefined && recipe.fidelitySamples > 0) weight += w.fidelityPer64 * (recipe.fidelitySamples / 64);
  if (recipe.maxDrop !== undefined) weight += w.maxDropSearch;
  if (gate) weight += w.gatePer1000 * ((gate.maxSamples ?? 1000) / 1000);
  return weight;
}

/**
 * Model files up to this size are parsed for the cost estimate to add the external-data files they
 * name (parsing costs about as much as reading the file, and every shard estimates every job). A
 * bigger .onnx file holds its weights inline, and its own size is the estimate.
 */
export const COST_PARSE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Estimated bytes of a model: its file plus the external-data files it names (each once). A missing
 * or unparsable model counts its file size (0 when absent): the job fails on its own, and every shard
 * sees the same size.
 */
export function modelBytes(file: string): number {
  const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (size === 0 || size > COST_PARSE_LIMIT_BYTES) return size;
  return size + externalDataFiles(file).reduce((a, f) => a + (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
}

/**
 * The external-data files a model names, absolute, sorted, each once (empty when the model cannot be
 * parsed: the job reports that itself). Locations that escape the model folder are left out here;
 * loading the model refuses them.
 */
export function externalDataFiles(file: string): string[] {
  let model;
  try {
    model = loadModel(file, { checkExternalData: false });
  } catch {
    return [];
  }
  const dir = path.dirname(path.resolve(file));
  const out = new Set<string>();
  const graph = model.proto.graph;
  if (!graph) return [];
  for (const g of walkGraphs(graph)) {
    for (const t of walkTensors(g)) {
      if (!isExternal(t)) continue;
      try {
        const loc = externalRef(t, file).location;
        const abs = path.resolve(dir, loc);
        const rel = path.relative(dir, abs);
        if (!rel.startsWith('..') && !path.isAbsolute(rel)) out.add(abs);
      } catch {
        // a malformed reference: loading the model reports it
      }
    }
  }
  return [...out].sort();
}

export interface CostedJob {
  id: string;
  cost: number;
}

/** sha256 of a job id, the tie-break of the assignment. */
function idHash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/**
 * Assign each job a shard (1..count), in the jobs' own order. Deterministic: depends only on the ids,
 * the costs and `count`, never on the order of `jobs`.
 */
export function assignShards(jobs: readonly CostedJob[], count: number): number[] {
  if (!Number.isInteger(count) || count < 1) throw new UsageError('E_FLAG', `shard count: expected a positive integer, got ${count}`);
  const order = jobs.map((j, i) => ({ i, cost: j.cost, h: idHash(j.id) }));
  order.sort((a, b) => b.cost - a.cost || (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
  const load = new Float64Array(count);
  const shardOf = new Array<number>(jobs.length);
  for (const { i, cost } of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    load[best] += cost;
    shardOf[i] = best + 1;
  }
  return shardOf;
}

/**
 * The shard a process runs, from `--shard i/n`, or from `--shards n` with the Kubernetes Indexed Job
 * variable JOB_COMPLETION_INDEX (0-based: index 0 is shard 1/n). Undefined when neither is given.
 * Shards are numbered 1..n, like `--shard` in jest, vitest and playwright.
 */
export function resolveShard(opts: { shard?: string; shards?: number; env?: Readonly<Record<string, string | undefined>> }): ShardSpec | undefined {
  const env = opts.env ?? process.env;
  if (opts.shard !== undefined && opts.shards !== undefined) throw new UsageError('E_OPTION_CONFLICT', '--shard i/n and --shards n: expected one of them, got both');
  if (opts.shard !== undefined) {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(opts.shard);
    if (!m) throw new UsageError('E_FLAG', `--shard: expected i/n (e.g. 2/4), got "${opts.shard}"`);
    const index = Number(m[1]);
    const count = Number(m[2]);
    if (count < 1) throw new UsageError('E_FLAG', `--shard ${opts.shard}: expected a shard count of at least 1, got ${count}`);
    if (index < 1 || index > count) throw new UsageError('E_FLAG', `--shard ${opts.shard}: expected i in 1..${count}, got ${index} (shards are numbered from 1; JOB_COMPLETION_INDEX 0 is shard 1/${count})`);
    return { index, count };
  }
  if (opts.shards !== undefined) {
    if (!Number.isInteger(opts.shards) || opts.shards < 1) throw new UsageError('E_FLAG', `--shards: expected a positive integer, got ${opts.shards}`);
    const raw = env.JOB_COMPLETION_INDEX;
    if (raw === undefined || raw === '') throw new UsageError('E_FLAG', '--shards n: expected the JOB_COMPLETION_INDEX environment variable (set by a Kubernetes Indexed Job), got none; use --shard i/n elsewhere');
    if (!/^\d+$/.test(raw.trim())) throw new UsageError('E_FLAG', `JOB_COMPLETION_INDEX: expected a non-negative integer, got "${raw}"`);
    const index = Number(raw.trim()) + 1;
    if (index > opts.shards) throw new UsageError('E_FLAG', `JOB_COMPLETION_INDEX=${raw}: expected 0..${opts.shards - 1} for --shards ${opts.shards}`);
    return { index, count: opts.shards };
  }
  return undefined;
}
