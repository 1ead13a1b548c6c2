/** One batch job, run inside its child process: quantize the model, then the optional gate. */
import type { BatchJobOutcome, BatchJobProgress, ResolvedJob } from './batch.js';
import { evaluate } from './eval.js';
import { quantize, quantizeGateError } from './quantize.js';

/** Run one job; `onProgress` gets the job's own stages (at most 10 events a second, plus every stage change). */
export async function runBatchJob(job: ResolvedJob, onProgress: (p: BatchJobProgress) => void = () => {}): Promise<BatchJobOutcome> {
  let last = 0;
  let lastStage = '';
  const report = (p: BatchJobProgress) => {
    const now = Date.now();
    if (p.stage === lastStage && now - last < 100 && !(p.done !== undefined && p.done === p.total)) return;
    last = now;
    lastStage = p.stage;
    onProgress(p);
  };
  // The runner decided this job must run: overwrite a stale output (it is replaced atomically).
  const { summary } = await quantize(job.model, { ...job.recipe, output: job.output, force: true }, { onProgress: (e) => report({ stage: e.stage, done: e.done, total: e.total }) });
  const outputBytes = summary.output.sizeBytes;
  // The same gate as `qtool quantize` (exit 4): the job fails, its output stays written for inspection.
  const q = quantizeGateError(summary, { allowUnchanged: (job.recipe as { allowUnchanged?: boolean }).allowUnchanged });
  if (q) return { outputBytes, sizeRatio: summary.sizeRatio, quantizeGate: { code: q.code, message: q.message } };
  let gate: BatchJobOutcome['gate'];
  if (job.gate) {
    const g = job.gate;
    const rec = job.recipe;
    const ev = await evaluate(job.output, {
      // The gate reads its data as the recipe reads --data (preprocessing, audio, text settings).
      preprocess: rec.preprocess,
      sampleRate: rec.sampleRate,
      window: rec.window,
      hop: rec.hop,
      tokenizer: rec.tokenizer,
      maxLength: rec.maxLength,
      padding: rec.padding,
      dims: rec.dims,
      data: g.data,
      labels: g.labels,
      reference: g.reference ?? job.model,
      metric: g.metric,
      failUnder: g.failUnder,
      maxDrop: g.maxDrop,
      maxSamples: g.maxSamples,
      batchSize: g.batchSize,
    }, { onProgress: (e) => report({ stage: 'gate', done: e.done, total: e.total }) });
    const r = ev.gate ?? { metric: ev.metric, value: ev.value, passed: true };
    gate = { metric: r.metric, value: r.value, passed: r.passed, drop: r.drop, reason: r.reason };
  }
  return { outputBytes, sizeRatio: summary.sizeRatio, gate };
}
