/**
 * `qtool batch merge summaries/*.json -o summary.json`: join the summaries of a sharded run into the
 * one summary a one-machine run writes. Every input must be a shard summary of the same jobs file
 * (same bytes, same shard count, same assignment); a job found in two summaries, or in none, is an
 * error naming it (exit 3), so a lost or repeated shard never passes as a complete run.
 */
import * as path from 'node:path';
import { BatchSummarySchema, readDocument, type BatchJobResult, type BatchShard, type BatchSummary } from '../documents/index.js';
import { InputError, UsageError } from '../errors.js';

export interface ShardLoad {
  file: string;
  index: number;
  count: number;
  jobs: number;
  costEstimate: number;
  durationMs: number;
}

export interface MergedBatch {
  summary: BatchSummary;
  /** Per input summary, by shard number: how much work it had and how long its jobs took. */
  shards: ShardLoad[];
}

/** List at most `max` names, then "and N more". */
function names(list: readonly string[], max = 20): string {
  return list.length <= max ? list.join(', ') : `${list.slice(0, max).join(', ')} and ${list.length - max} more`;
}

const sameAssignment = (a: BatchShard, b: BatchShard) =>
  a.assignment.length === b.assignment.length && a.assignment.every((x, i) => x.id === b.assignment[i].id && x.shard === b.assignment[i].shard);

/** Read the shard summaries in `files` and merge them (see the module comment). */
export function mergeBatchSummaries(files: readonly string[]): MergedBatch {
  if (files.length === 0) throw new UsageError('E_FLAG', 'batch merge: expected at least one shard summary, got none');
  const inputs = files.map((file) => ({ file, summary: readDocument(file, BatchSummarySchema) }));
  return mergeBatchDocuments(inputs);
}

/** mergeBatchSummaries() on documents already read (`file` names each in messages). */
export function mergeBatchDocuments(inputs: readonly { file: string; summary: BatchSummary }[]): MergedBatch {
  const first = inputs[0];
  for (const { file, summary } of inputs) {
    if (!summary.shard) throw new InputError('E_MERGE_MISMATCH', 'not a shard summary: expected the summary of `qtool batch --shard i/n` (it has a "shard" field), got one without', { file });
  }
  const ref = first.summary.shard!;
  const byIndex = new Map<number, string>();
  for (const { file, summary } of inputs) {
    const s = summary.shard!;
    const versus = `than ${first.file}`;
    if (s.count !== ref.count) throw new InputError('E_MERGE_MISMATCH', `shard ${s.index}/${s.count}: expected the same shard count ${versus} (${ref.count}), got ${s.count}`, { file });
    if (s.jobsFileSha256 !== ref.jobsFileSha256) throw new InputError('E_MERGE_MISMATCH', `expected a shard of the same jobs file ${versus} (sha256 ${ref.jobsFileSha256.slice(0, 12)}…), got ${s.jobsFileSha256.slice(0, 12)}…`, { file });
    if (!sameAssignment(s, ref)) {
      throw new InputError('E_MERGE_MISMATCH', `expected the same job assignment ${versus}, got another (the shards saw different model files: sizes differ between machines?)`, { file });
    }
    const seen = byIndex.get(s.index);
    if (seen !== undefined) {
      const dup = summary.jobs.map((j) => j.id);
      throw new InputError('E_MERGE_DUPLICATE', `shard ${s.index}/${s.count} is given twice (also ${seen}): duplicate jobs ${names(dup)}`, { file });
    }
    byIndex.set(s.index, file);
  }

  const shardOf = new Map(ref.assignment.map((a) => [a.id, a.shard]));
  const found = new Map<string, { result: BatchJobResult; file: string }>();
  const duplicates: string[] = [];
  for (const { file, summary } of inputs) {
    const s = summary.shard!;
    for (const job of summary.jobs) {
      const owner = shardOf.get(job.id);
      if (owner === undefined) throw new InputError('E_MERGE_MISMATCH', `job "${job.id}": expected a job of the jobs file, got one its assignment does not list`, { file });
      if (owner !== s.index) throw new InputError('E_MERGE_MISMATCH', `job "${job.id}": expected it in shard ${owner}/${s.count}'s summary, got it in shard ${s.index}/${s.count}'s`, { file });
      const prev = found.get(job.id);
      if (prev) duplicates.push(`${job.id} (${prev.file}, ${file})`);
      else found.set(job.id, { result: job, file });
    }
  }
  if (duplicates.length) throw new InputError('E_MERGE_DUPLICATE', `jobs in more than one summary: ${names(duplicates)}`);
  const missing = ref.assignment.filter((a) => !found.has(a.id));
  if (missing.length) {
    const groups = new Map<number, string[]>();
    for (const m of missing) groups.set(m.shard, [...(groups.get(m.shard) ?? []), m.id]);
    const parts = [...groups.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([shard, ids]) => `${names(ids)} (shard ${shard}/${ref.count}: ${byIndex.has(shard) ? `not in ${byIndex.get(shard)}` : 'no summary given'})`);
    throw new InputError('E_MERGE_MISSING', `${missing.length} of ${ref.assignment.length} jobs missing: ${parts.join('; ')}`);
  }

  const jobs = ref.assignment.map((a) => found.get(a.id)!.result);
  const count = (st: BatchJobResult['status']) => jobs.filter((r) => r.status === st).length;
  const summary: BatchSummary = {
    kind: 'qtool.batch-summary',
    version: 1,
    jobsFile: first.summary.jobsFile,
    concurrency: Math.max(...inputs.map((i) => i.summary.concurrency)),
    counts: { ok: count('ok'), skipped: count('skipped'), failed: count('failed'), interrupted: count('interrupted') },
    jobs,
  };
  const shards = inputs
    .map(({ file, summary: s }) => ({
      file: path.normalize(file),
      index: s.shard!.index,
      count: s.shard!.count,
      jobs: s.jobs.length,
      costEstimate: ref.assignment.filter((a) => a.shard === s.shard!.index).reduce((t, a) => t + a.costEstimate, 0),
      durationMs: s.jobs.reduce((t, j) => t + j.durationMs, 0),
    }))
    .sort((a, b) => a.index - b.index);
  return { summary, shards };
}
