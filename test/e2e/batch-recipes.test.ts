/**
 * examples/batch/*.yml, run locally: the Kubernetes Indexed Job's shard and merge scripts and the
 * GitHub Actions matrix's `run:` blocks are taken from the YAML as written and executed, one process
 * per shard index, all at once, with `qtool`/`npx qtool` resolved to this checkout's bin/qtool. The
 * merged summary and every output byte are compared with a one-machine run of the same jobs file.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { BatchSummarySchema, type BatchSummary } from '../../src/documents/index.js';
import { BIN, FMNIST, ROOT } from '../helpers/paths.js';
import { spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

const K8S = path.join(ROOT, 'examples/batch/kubernetes-indexed-job.yaml');
const GHA = path.join(ROOT, 'examples/batch/github-actions-matrix.yml');

let work: string; // the "volume" / checkout every shard sees
let baseline: string; // outputs and summary of the one-machine run
let shimDir: string;
let oneMachine: BatchSummary;

const JOBS = {
  kind: 'qtool.batch-jobs',
  version: 1,
  defaults: { fidelitySamples: 0 },
  jobs: [
    { id: 'mlp-dynamic', model: 'models/mlp.onnx', output: 'out/mlp.dynamic.onnx', recipe: { mode: 'dynamic' } },
    { id: 'mlp-int4', model: 'models/mlp.onnx', output: 'out/mlp.int4.onnx', recipe: { bits: 4 } },
    { id: 'cnn-static', model: 'models/cnn.onnx', output: 'out/cnn.int8.onnx', recipe: { mode: 'static', data: 'data/calib.npy', samples: 32 } },
    { id: 'mlp-external', model: 'models/mlp.onnx', output: 'out/ext/mlp.onnx', recipe: { mode: 'dynamic', externalData: true } },
    // Same content as mlp-dynamic: a cache hit when it runs after it on any shard sharing the cache.
    { id: 'mlp-dynamic-again', model: 'models/mlp.onnx', output: 'out/again/mlp.dynamic.onnx', recipe: { mode: 'dynamic' } },
    { id: 'broken', model: 'models/corrupt.onnx', output: 'out/broken.onnx', recipe: { mode: 'dynamic' } },
  ],
};

/** Every file under `dir` (relative paths), hidden staging/temp names included. */
function listFiles(dir: string, rel = ''): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name), path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

/** A summary without what legitimately differs between runs: job times, notes, cache use, the shard. */
function comparable(s: BatchSummary) {
  const { shard: _, ...rest } = s;
  return { ...rest, jobs: s.jobs.map(({ durationMs: _d, note: _n, cache: _c, ...j }) => j) };
}

function runScript(shell: 'sh' | 'bash', script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(shell, shell === 'bash' ? ['-e', '-c', script] : ['-c', script], {
      cwd: work,
      env: { ...process.env, NO_COLOR: '1', PATH: `${shimDir}:${process.env.PATH}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function resetWork(): void {
  for (const d of ['out', 'summaries', 'cache', '.qtool-cache', 'summary.json', 'step-summary.md']) fs.rmSync(path.join(work, d), { recursive: true, force: true });
}

/** The merged run left the same files with the same bytes as the one-machine run, and nothing half-made. */
function expectSameOutputs(): void {
  const want = listFiles(path.join(baseline, 'out')).filter((f) => !f.endsWith('.qtool-job.json'));
  const got = listFiles(path.join(work, 'out'));
  expect(got.filter((f) => /\.qtool-(stage|tmp)-/.test(f))).toEqual([]);
  expect(got.filter((f) => !f.endsWith('.qtool-job.json')).sort()).toEqual(want.sort());
  for (const f of want) expect(fs.readFileSync(path.join(work, 'out', f)).equals(fs.readFileSync(path.join(baseline, 'out', f))), f).toBe(true);
  expect(want).toContain(path.join('ext', 'mlp.onnx.data'));
}

beforeAll(() => {
  work = makeTempDir('qtool-recipes-');
  baseline = makeTempDir('qtool-recipes-base-');
  shimDir = makeTempDir('qtool-recipes-bin-');
  fs.mkdirSync(path.join(work, 'models'));
  fs.mkdirSync(path.join(work, 'data'));
  fs.copyFileSync(FMNIST.mlp, path.join(work, 'models/mlp.onnx'));
  fs.copyFileSync(FMNIST.cnn, path.join(work, 'models/cnn.onnx'));
  fs.copyFileSync(FMNIST.calibX, path.join(work, 'data/calib.npy'));
  fs.writeFileSync(path.join(work, 'models/corrupt.onnx'), fs.readFileSync(FMNIST.cnn).subarray(0, 5000));
  fs.writeFileSync(path.join(work, 'jobs.json'), JSON.stringify(JOBS, null, 2));
  // In the pod image qtool is installed globally; in CI `npx qtool` finds the devDependency.
  fs.writeFileSync(path.join(shimDir, 'qtool'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(shimDir, 'npx'), `#!/bin/sh\nif [ "$1" = qtool ]; then shift; exec "${process.execPath}" "${BIN}" "$@"; fi\necho "unexpected npx $1" >&2; exit 127\n`, { mode: 0o755 });

  // The one-machine run, in the same folder (same absolute paths in messages), kept aside.
  const one = spawnQtool(['batch', 'jobs.json', '--summary', 'one.json'], { cwd: work });
  expect(one.code, one.stderr).toBe(6);
  oneMachine = BatchSummarySchema.parse(JSON.parse(fs.readFileSync(path.join(work, 'one.json'), 'utf8')));
  expect(oneMachine.counts).toEqual({ ok: 5, skipped: 0, failed: 1, interrupted: 0 });
  fs.renameSync(path.join(work, 'out'), path.join(baseline, 'out'));
}, 180_000);

afterAll(() => {
  for (const d of [work, baseline, shimDir]) fs.rmSync(d, { recursive: true, force: true });
});

describe('examples/batch/kubernetes-indexed-job.yaml', () => {
  const docs = parseAllDocuments(fs.readFileSync(K8S, 'utf8')).map((d) => d.toJS());
  const shardJob = docs.find((d) => d.kind === 'Job' && d.spec?.completionMode === 'Indexed');
  const mergeJob = docs.find((d) => d.kind === 'Job' && d !== shardJob);

  it('is an Indexed Job with SHARDS = completions, a cache volume, and a merge Job', () => {
    expect(docs.map((d) => d.kind)).toEqual(['PersistentVolumeClaim', 'PersistentVolumeClaim', 'Job', 'Job']);
    const c = shardJob.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(Number(env.SHARDS)).toBe(shardJob.spec.completions);
    expect(shardJob.spec.parallelism).toBeLessThanOrEqual(shardJob.spec.completions);
    expect(c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === env.QTOOL_CACHE)).toBeDefined();
    expect(c.args[0]).toMatch(/qtool batch jobs\.json --shards "\$SHARDS".*--cache "\$QTOOL_CACHE"/s);
    expect(mergeJob.spec.template.spec.containers[0].args[0]).toMatch(/qtool batch merge summaries\/shard-\*\.json -o summary\.json/);
    for (const d of docs) expect(d.metadata.labels['app.kubernetes.io/component']).toMatch(/^(storage|shards|merge)$/);
  });

  it('n shard processes + merge give the one-machine summary and outputs', async () => {
    resetWork();
    const c = shardJob.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    const n = shardJob.spec.completions as number;
    const cache = path.join(work, 'cache');
    const shards = await Promise.all(Array.from({ length: n }, (_, i) => runScript('sh', c.args[0], { ...env, QTOOL_CACHE: cache, JOB_COMPLETION_INDEX: String(i) })));
    for (const r of shards) expect(r.code, r.stderr).toBe(0); // exit 6 (a failed job) is left to the merge
    expect(fs.readdirSync(path.join(work, 'summaries')).sort()).toEqual(Array.from({ length: n }, (_, i) => `shard-${i}.json`));
    const merge = await runScript('sh', mergeJob.spec.template.spec.containers[0].args[0], {});
    expect(merge.code, merge.stderr).toBe(6);
    expect(merge.stderr).toMatch(/E_BATCH_PARTIAL: 1 of 6 jobs failed: broken/);
    expect(merge.stdout).toMatch(/shard\s+jobs\s+est\. cost/);
    const merged = BatchSummarySchema.parse(JSON.parse(fs.readFileSync(path.join(work, 'summary.json'), 'utf8')));
    expect(comparable(merged)).toEqual(comparable(oneMachine));
    expectSameOutputs();
    expect(listFiles(path.join(cache, '.tmp'))).toEqual([]);
  }, 180_000);
});

describe('examples/batch/github-actions-matrix.yml', () => {
  const wf = parseYaml(fs.readFileSync(GHA, 'utf8'));
  const shardSteps: { name?: string; run?: string }[] = wf.jobs.shard.steps;
  const mergeSteps: { name?: string; run?: string }[] = wf.jobs.merge.steps;
  const runShard = shardSteps.find((s) => s.name === 'Run shard')!;
  const runMerge = mergeSteps.find((s) => s.name === 'Merge shard summaries')!;

  it('is a matrix over 1..SHARDS with a merge job that always runs', () => {
    const matrix: number[] = wf.jobs.shard.strategy.matrix.shard;
    expect(matrix).toEqual(Array.from({ length: Number(wf.env.SHARDS) }, (_, i) => i + 1));
    expect(wf.jobs.shard.strategy['fail-fast']).toBe(false);
    expect(wf.jobs.merge.needs).toBe('shard');
    expect(wf.jobs.merge.if).toBe('always()');
    expect(runShard.run).toMatch(/--shard \$\{\{ matrix\.shard \}\}\/\$SHARDS --cache \.qtool-cache/);
    expect(runMerge.run).toMatch(/--markdown >> "\$GITHUB_STEP_SUMMARY"/);
  });

  it('the matrix shards + merge job give the one-machine summary and outputs, and a Markdown job summary', async () => {
    resetWork();
    const matrix: number[] = wf.jobs.shard.strategy.matrix.shard;
    const env = { SHARDS: String(wf.env.SHARDS) };
    // Each matrix job has its own runner: its own cache folder (actions/cache restores, never shares live).
    const shards = await Promise.all(
      matrix.map((i) => {
        const script = runShard.run!.replaceAll('${{ matrix.shard }}', String(i)).replaceAll('.qtool-cache', `.qtool-cache/runner-${i}`);
        return runScript('bash', script, env);
      }),
    );
    for (const r of shards) expect(r.code, r.stderr).toBe(0);
    const stepSummary = path.join(work, 'step-summary.md');
    const merge = await runScript('bash', runMerge.run!, { ...env, GITHUB_STEP_SUMMARY: stepSummary });
    expect(merge.code, merge.stderr).toBe(6);
    const md = fs.readFileSync(stepSummary, 'utf8');
    expect(md).toMatch(/^### qtool batch: 5 ok, 0 skipped \(unchanged\), 1 failed/);
    expect(md).toMatch(/\| job \| status \| output \|/);
    expect(md).toMatch(/\| broken \| FAILED E_MODEL_PARSE \|/);
    expect(md).toMatch(/\| shard \| jobs \| est\. cost \| job time \|/);
    const merged = BatchSummarySchema.parse(JSON.parse(fs.readFileSync(path.join(work, 'summary.json'), 'utf8')));
    expect(comparable(merged)).toEqual(comparable(oneMachine));
    expectSameOutputs();

    // The next run restores the caches: every passing job is a cache hit (outputs removed, e.g. a fresh runner).
    fs.rmSync(path.join(work, 'out'), { recursive: true });
    const again = await Promise.all(matrix.map((i) => runScript('bash', runShard.run!.replaceAll('${{ matrix.shard }}', String(i)).replaceAll('.qtool-cache', `.qtool-cache/runner-${i}`), env)));
    for (const r of again) expect(r.code, r.stderr).toBe(0);
    const rerun = await runScript('bash', runMerge.run!.trim().replace(/ --markdown.*$/, ' --json'), env);
    expect(rerun.code).toBe(6);
    const s = BatchSummarySchema.parse(JSON.parse(rerun.stdout));
    expect(s.jobs.filter((j) => j.status === 'ok').every((j) => j.cache === 'hit')).toBe(true);
    expectSameOutputs();
  }, 240_000);
});
