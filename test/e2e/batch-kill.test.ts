/**
 * kill -9 of a `qtool batch` shard mid-run (issue #16 failure behaviour, issue #14 item 8): the job's
 * child process exits by itself instead of finishing, no output path or cache entry holds a partial
 * or late file, and the re-run resumes (finished jobs skipped, the killed one redone, stale staging
 * and temp folders swept).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchSummarySchema } from '../../src/documents/index.js';
import { BIN, FMNIST } from '../helpers/paths.js';
import { spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-batch-kill-');
  fs.writeFileSync(
    path.join(dir, 'jobs.json'),
    JSON.stringify({
      jobs: [
        { id: 'fast-mlp', model: FMNIST.mlp, output: 'out/mlp.onnx', recipe: { mode: 'dynamic', fidelitySamples: 0 } },
        { id: 'fast-cnn', model: FMNIST.cnn, output: 'out/cnn.onnx', recipe: { mode: 'dynamic', fidelitySamples: 0, allowUnchanged: true } },
        // Seconds of work (512 single-sample calibration batches, a 2,000-sample gate one by one).
        {
          id: 'slow',
          model: FMNIST.cnn,
          output: 'out/slow.onnx',
          recipe: { mode: 'static', data: FMNIST.calibX, samples: 512, batchSize: 1 },
          gate: { data: FMNIST.valX, labels: FMNIST.valY, batchSize: 1, maxDrop: 5 },
        },
      ],
    }),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const childrenOf = (pid: number) =>
  spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    .stdout.trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
/** Running, or gone / a zombie waiting to be reaped. */
const isRunning = (pid: number) => fs.existsSync(`/proc/${pid}/stat`) && !['Z', 'X'].includes(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? 'X');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const files = (d: string, rel = ''): string[] =>
  fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name), path.join(rel, e.name)) : [path.join(rel, e.name)])) : [];

describe('kill -9 of a batch shard', () => {
  it('the running job’s child exits without finishing; nothing partial or late appears; the re-run resumes', async () => {
    // QTOOL_NO_SUPERVISOR: `parent` is the batch runner itself, not the Ctrl-C supervisor (src/cli/supervise.ts)
    // in front of it, so the kill -9 really orphans the job's child.
    const parent = spawn(process.execPath, [BIN, 'batch', 'jobs.json', '--shard', '1/1', '--cache', 'cache'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, QTOOL_NO_SUPERVISOR: '1' } });
    let stderr = '';
    parent.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((r) => parent.on('exit', r));
    // Wait until the two fast jobs are done and the slow job's child is running.
    let child: number | undefined;
    for (let i = 0; i < 1200 && child === undefined; i++) {
      await sleep(50);
      if (stderr.includes('fast-cnn: ok')) child = childrenOf(parent.pid!)[0];
    }
    expect(child, stderr).toBeDefined();
    await sleep(500);
    parent.kill('SIGKILL');
    await exited;
    // The orphan notices (IPC channel closed / re-parented) and exits; it does not finish its job.
    for (let i = 0; i < 600 && isRunning(child!); i++) await sleep(50);
    expect(isRunning(child!)).toBe(false);
    const out = files(path.join(dir, 'out'));
    expect(out.filter((f) => path.basename(f) === 'slow.onnx')).toEqual([]); // not published, not even finished in its staging folder
    expect(out.filter((f) => !f.startsWith('.qtool-'))).toEqual(['cnn.onnx', 'cnn.onnx.qtool-job.json', 'mlp.onnx', 'mlp.onnx.qtool-job.json']);
    // The dead run's staging folder is still there (nobody could remove it): hidden, never published.
    expect(fs.readdirSync(path.join(dir, 'out')).filter((n) => n.startsWith('.qtool-stage-'))).toHaveLength(1);
    // Two whole cache entries (the fast jobs), none for the killed one.
    const entries = files(path.join(dir, 'cache')).filter((f) => !f.startsWith('.tmp'));
    expect(entries.filter((f) => f.endsWith('entry.json'))).toHaveLength(2);

    const again = spawnQtool(['batch', 'jobs.json', '--shard', '1/1', '--cache', 'cache', '--json'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    const s = BatchSummarySchema.parse(JSON.parse(again.stdout));
    expect(s.jobs.map((j) => [j.id, j.status])).toEqual([
      ['fast-mlp', 'skipped'],
      ['fast-cnn', 'skipped'],
      ['slow', 'ok'],
    ]);
    expect(s.jobs[2].cache).toBe('stored');
    // The dead run's staging folder and temp files are gone; the cache holds three whole entries.
    expect(files(path.join(dir, 'out')).filter((f) => /\.qtool-(stage|tmp)-/.test(f))).toEqual([]);
    expect(files(path.join(dir, 'cache', '.tmp'))).toEqual([]);
    expect(files(path.join(dir, 'cache')).filter((f) => f.endsWith('entry.json'))).toHaveLength(3);
  }, 240_000);
});
