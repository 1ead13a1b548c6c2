import { performance } from 'node:perf_hooks';
import * as os from 'node:os';
import type { Model } from '../onnx/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { percentile } from './stats.js';

/** One model variant to time: a model (or its bytes or path) and the session config it runs with. */
export interface LatencyCandidate {
  label: string;
  source: Model | Uint8Array | string;
  /** Session config entries, e.g. { 'session.qdq_matmulnbits_accuracy_level': '0' }. */
  config?: Readonly<Record<string, string>>;
}

export interface InterleavedOptions {
  /** The same inputs for every candidate. */
  feeds: Feeds;
  /** Stop starting new rounds after this many seconds of timed runs (default 2). */
  maxSeconds?: number;
  /** Rounds always run, whatever the time (default 5). */
  minRounds?: number;
  /** Never more rounds than this (default 2000). */
  maxRounds?: number;
  /** Untimed runs per candidate before the first round (default 2). */
  warmup?: number;
  /** Intra-op threads (default 1: steady figures on a shared machine). */
  threads?: number;
}

/** Timing of one candidate, relative to the first candidate (the reference, e.g. float). */
export interface CandidateLatency {
  label: string;
  medianMs: number;
  /**
   * Median over rounds of (this run / the reference's run in the same round): pairs taken moments
   * apart, so load from other processes cancels out better than in a ratio of medians.
   */
  ratio: number;
  /** Lower and upper quartile of the per-round ratios (the spread under this machine's load). */
  ratioQ1: number;
  ratioQ3: number;
}

export interface InterleavedResult {
  candidates: CandidateLatency[];
  rounds: number;
  /** Seconds spent in timed runs. */
  seconds: number;
  threads: number;
  /** 1-minute load average when the measurement ended (other processes on the machine). */
  loadAverage: number;
}

/**
 * Time several variants of a model on the same feeds, interleaved: each round runs every candidate
 * once, in an order rotated per round, so drifts in machine load hit all of them alike. Rounds go on
 * until `maxSeconds` of timed runs (at least `minRounds`, at most `maxRounds`). The first candidate is
 * the reference of every ratio. Sessions are opened once, up front, and released at the end.
 */
export async function measureInterleaved(candidates: readonly LatencyCandidate[], opts: InterleavedOptions): Promise<InterleavedResult> {
  if (candidates.length === 0) throw new RangeError('measureInterleaved: expected at least one candidate');
  const threads = opts.threads ?? 1;
  const maxMs = (opts.maxSeconds ?? 2) * 1000;
  const minRounds = opts.minRounds ?? 5;
  const maxRounds = Math.max(minRounds, opts.maxRounds ?? 2000);
  const sessions: Session[] = [];
  try {
    for (const c of candidates) sessions.push(await Session.open(c.source, { threads, config: c.config, name: c.label }));
    for (const s of sessions) for (let i = 0; i < (opts.warmup ?? 2); i++) await s.run(opts.feeds);
    const times: number[][] = candidates.map(() => []);
    let spent = 0;
    let rounds = 0;
    while (rounds < minRounds || (rounds < maxRounds && spent < maxMs)) {
      for (let j = 0; j < sessions.length; j++) {
        const i = (j + rounds) % sessions.length;
        const t0 = performance.now();
        await sessions[i].run(opts.feeds);
        const dt = performance.now() - t0;
        times[i].push(dt);
        spent += dt;
      }
      rounds++;
    }
    return { candidates: summarize(candidates.map((c) => c.label), times), rounds, seconds: spent / 1000, threads, loadAverage: os.loadavg()[0] };
  } finally {
    for (const s of sessions) await s.release();
  }
}

/** Per-candidate medians and paired ratios against candidate 0, from per-round times (same length per candidate). */
export function summarize(labels: readonly string[], times: readonly (readonly number[])[]): CandidateLatency[] {
  const ref = times[0];
  return labels.map((label, i) => {
    const t = Float64Array.from(times[i]).sort();
    const ratios = Float64Array.from(times[i], (v, r) => v / ref[r]).sort();
    return { label, medianMs: percentile(t, 50), ratio: percentile(ratios, 50), ratioQ1: percentile(ratios, 25), ratioQ3: percentile(ratios, 75) };
  });
}

/**
 * Whether a candidate is slower than the reference beyond this run's noise: in at least three of
 * four rounds it took longer (the lower quartile of its paired ratios is above 1).
 */
export function isClearlySlower(c: CandidateLatency): boolean {
  return c.ratioQ1 > 1;
}
