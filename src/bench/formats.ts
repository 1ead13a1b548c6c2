import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FormatDecision, LatencyMachine, MeasuredCandidate } from '../documents/index.js';
import { sha256, writeFileAtomic } from '../files.js';
import { ortVersion } from '../runtime/index.js';

/** CPU features that change which onnxruntime kernels run (int8 dot products, wide vectors). */
const CPU_FEATURES = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8', 'asimddp', 'i8mm', 'sve'];

/** CPU model, relevant ISA features and core count, e.g. "Intel(R) Xeon(R) Processor [avx2 avx512_vnni] ×2". */
export function cpuDescription(): string {
  let name = os.cpus()[0]?.model ?? 'unknown CPU';
  let features: string[] = [];
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(info);
    if (model) name = model[1].trim();
    const flags = /^(?:flags|Features)\s*:\s*(.+)$/m.exec(info);
    if (flags) {
      const have = new Set(flags[1].trim().split(/\s+/));
      features = CPU_FEATURES.filter((f) => have.has(f));
    }
  } catch {
    // not Linux: the model name alone
  }
  return `${name}${features.length ? ` [${features.join(' ')}]` : ''} ×${os.cpus().length}`;
}

export function latencyMachine(threads: number): LatencyMachine {
  return { cpu: cpuDescription(), onnxruntime: ortVersion(), threads };
}

/**
 * Where measured latencies are cached: $QTOOL_CACHE_DIR, else $XDG_CACHE_HOME/qtool, else
 * ~/.cache/qtool. The file is latency-cache.json; deleting it only costs a re-measurement.
 */
export function latencyCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.QTOOL_CACHE_DIR) return env.QTOOL_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'qtool');
  return path.join(os.homedir(), '.cache', 'qtool');
}

export const LATENCY_CACHE_FILE = 'latency-cache.json';
/** Entries kept in the cache file (oldest dropped first). */
const MAX_CACHE_ENTRIES = 500;

/** What is cached per key: the measurement, not the choice (the accuracy constraint may differ). */
export type CachedMeasurement = Pick<FormatDecision, 'batchSizes' | 'rounds' | 'seconds' | 'loadAverage'> & {
  candidates: Pick<MeasuredCandidate, 'label' | 'ratios' | 'medianMs' | 'ratioQ1'>[];
};

interface CacheFile {
  kind: 'qtool.latency-cache';
  version: 1;
  entries: Record<string, (CachedMeasurement | object) & { savedAt: string }>;
}

/** Cache key: the float model's hash, what the candidates are (plan + rewrite options + labels + batch sizes) and the machine. */
export function latencyCacheKey(modelSha256: string, variant: unknown, machine: LatencyMachine): string {
  return sha256(JSON.stringify({ model: modelSha256, variant, machine }));
}

function readCacheFile(dir: string): CacheFile {
  try {
    const doc = JSON.parse(fs.readFileSync(path.join(dir, LATENCY_CACHE_FILE), 'utf8')) as CacheFile;
    if (doc && doc.kind === 'qtool.latency-cache' && doc.version === 1 && typeof doc.entries === 'object' && doc.entries) return doc;
  } catch {
    // missing or unreadable: an empty cache
  }
  return { kind: 'qtool.latency-cache', version: 1, entries: {} };
}

export function readLatencyCache(dir: string, key: string): CachedMeasurement | undefined {
  const e = readCacheFile(dir).entries[key] as (CachedMeasurement & { savedAt: string }) | undefined;
  if (!e || !Array.isArray(e.candidates) || !Array.isArray(e.batchSizes)) return undefined;
  const { savedAt: _savedAt, ...m } = e;
  return m;
}

/** Another kind of cached measurement (e.g. per-layer profiles), accepted only when `isValid` says its shape is right. */
export function readCacheValue<T extends object>(dir: string, key: string, isValid: (v: unknown) => v is T): T | undefined {
  const e = readCacheFile(dir).entries[key];
  if (!e) return undefined;
  const { savedAt: _savedAt, ...v } = e as Record<string, unknown>;
  return isValid(v) ? v : undefined;
}

/** Add or replace one entry (atomic write; a cache that cannot be written is skipped silently: it is only a cache). */
export function writeLatencyCache(dir: string, key: string, m: CachedMeasurement | object): void {
  try {
    const doc = readCacheFile(dir);
    doc.entries[key] = { ...m, savedAt: new Date().toISOString() };
    const keys = Object.keys(doc.entries);
    if (keys.length > MAX_CACHE_ENTRIES) {
      keys.sort((a, b) => (doc.entries[a].savedAt < doc.entries[b].savedAt ? -1 : 1));
      for (const k of keys.slice(0, keys.length - MAX_CACHE_ENTRIES)) delete doc.entries[k];
    }
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, LATENCY_CACHE_FILE), `${JSON.stringify(doc, null, 1)}\n`);
  } catch {
    // read-only home, full disk: measure again next time
  }
}

/** Geometric mean of a candidate's ratios over the measured batch sizes (its speed score; lower is faster). */
export function latencyScore(c: Pick<MeasuredCandidate, 'ratios'>): number {
  if (c.ratios.length === 0) return Infinity;
  let s = 0;
  for (const r of c.ratios) s += Math.log(r);
  return Math.exp(s / c.ratios.length);
}

/**
 * The candidate to keep: the fastest (lowest latencyScore) eligible candidate other than float (the
 * reference: a quantize run writes a quantized model); `preferred` (the default format) wins ties.
 * Returns undefined when no quantized candidate is eligible.
 */
export function chooseFastest(candidates: readonly MeasuredCandidate[], preferred?: string): MeasuredCandidate | undefined {
  let best: MeasuredCandidate | undefined;
  for (const c of candidates) {
    if (c.label === 'float' || !c.isEligible) continue;
    if (!best) best = c;
    else {
      const d = latencyScore(c) - latencyScore(best);
      if (d < 0 || (d === 0 && c.label === preferred)) best = c;
    }
  }
  return best;
}

/** Batch sizes at which a candidate's median paired ratio to float is above 1 (slower). */
export function slowerThanFloatAt(c: Pick<MeasuredCandidate, 'ratios'>, batchSizes: readonly number[]): number[] {
  return batchSizes.filter((_, i) => c.ratios[i] > 1);
}

/** Of those, the batch sizes where it was slower in at least 3 of 4 rounds (beyond this run's noise). */
export function clearlySlowerAt(c: Pick<MeasuredCandidate, 'ratioQ1'>, batchSizes: readonly number[]): number[] {
  return batchSizes.filter((_, i) => c.ratioQ1[i] > 1);
}
