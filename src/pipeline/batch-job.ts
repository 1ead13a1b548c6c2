/** One batch job, run inside its child process: quantize the model, then the optional gate. */
import type { BatchJobOutcome, ResolvedJob } from './batch.js';
import { evaluate } from './eval.js';
import { quantize } from './quantize.js';

export async function runBatchJob(job: ResolvedJob): Promise<BatchJobOutcome> {
  // The runner decided this job must run: overwrite a stale output (it is replaced atomically).
  const { summary } = await quantize(job.model, { ...job.recipe, output: job.output, force: true });
  const outputBytes = summary.output.sizeBytes;
  let gate: BatchJobOutcome['gate'];
  if (job.gate) {
    const g = job.gate;
    const report = await evaluate(job.output, {
      data: g.data,
      labels: g.labels,
      reference: g.reference ?? job.model,
      metric: g.metric,
      failUnder: g.failUnder,
      maxDrop: g.maxDrop,
      maxSamples: g.maxSamples,
      batchSize: g.batchSize,
    });
    const r = report.gate ?? { metric: report.metric, value: report.value, passed: true };
    gate = { metric: r.metric, value: r.value, passed: r.passed, drop: r.drop, reason: r.reason };
  }
  return { outputBytes, sizeRatio: summary.sizeRatio, gate };
}
