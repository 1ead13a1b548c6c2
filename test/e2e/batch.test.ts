import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchSummarySchema } from '../../src/documents/index.js';
import { BIN, FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-batch-e2e-');
  fs.copyFileSync(FMNIST.cnn, path.join(dir, 'cnn.onnx'));
  fs.copyFileSync(FMNIST.mlp, path.join(dir, 'mlp.onnx'));
  // A truncated model: the protobuf ends mid-tensor.
  fs.writeFileSync(path.join(dir, 'corrupt.onnx'), fs.readFileSync(FMNIST.cnn).subarray(0, 5000));
  fs.writeFileSync(
    path.join(dir, 'jobs.json'),
    JSON.stringify({
      kind: 'qtool.batch-jobs',
      version: 1,
      defaults: { bits: 8 },
      jobs: [
        {
          id: 'cnn-int8',
          model: 'cnn.onnx',
          output: 'out/cnn.int8.onnx',
          recipe: { mode: 'static', data: FMNIST.calibX, samples: 64 },
          gate: { data: FMNIST.valX, labels: FMNIST.valY, maxSamples: 200, maxDrop: 2 },
        },
        { id: 'broken', model: 'corrupt.onnx', output: 'out/broken.int8.onnx', recipe: { mode: 'dynamic' } },
        { id: 'mlp-int8', model: 'mlp.onnx', output: 'out/mlp.int8.onnx', recipe: { mode: 'dynamic' } },
      ],
    }),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('qtool batch', () => {
  it('three jobs, one corrupt model: two finish, the bad one is reported, exit 6; a re-run skips the finished two', () => {
    const first = spawnQtool(['batch', 'jobs.json', '--concurrency', '2'], { cwd: dir });
    expect(first.code, first.stderr).toBe(6);
    expect(hasStackTrace(first.stderr)).toBe(false);
    expect(first.stderr).toMatch(/E_BATCH_PARTIAL: 1 of 3 jobs failed: broken/);
    expect(first.stdout).toMatch(/broken\s+FAILED E_MODEL_PARSE/);
    expect(first.stdout).toMatch(/2 ok, 0 skipped \(unchanged\), 1 failed/);
    const summary = BatchSummarySchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'jobs.summary.json'), 'utf8')));
    expect(summary.jobs.map((j) => [j.id, j.status])).toEqual([
      ['cnn-int8', 'ok'],
      ['broken', 'failed'],
      ['mlp-int8', 'ok'],
    ]);
    expect(summary.jobs[1].error).toMatchObject({ code: 'E_MODEL_PARSE', exitCode: 3 });
    expect(summary.jobs[0].gate).toMatchObject({ metric: 'accuracy', passed: true });
    for (const f of ['cnn.int8.onnx', 'mlp.int8.onnx', 'cnn.int8.onnx.qtool-job.json']) expect(fs.existsSync(path.join(dir, 'out', f))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'out/broken.int8.onnx'))).toBe(false);

    const second = spawnQtool(['batch', 'jobs.json', '--json', '--summary', 'again.json'], { cwd: dir });
    expect(second.code).toBe(6);
    const again = BatchSummarySchema.parse(JSON.parse(second.stdout));
    expect(again.jobs.map((j) => j.status)).toEqual(['skipped', 'failed', 'skipped']);
    expect(again.counts).toEqual({ ok: 0, skipped: 2, failed: 1, interrupted: 0 });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'again.json'), 'utf8'))).toEqual(JSON.parse(second.stdout));
  });

  it('an invalid jobs file exits 3 naming the field', () => {
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ jobs: [{ id: 'x', model: 'cnn.onnx', output: 'o.onnx', recipe: { bits: 5 } }] }));
    const r = spawnQtool(['batch', 'bad.json'], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/E_DOCUMENT_INVALID.*jobs\.0\.recipe\.bits/);
  });

  it('SIGINT stops cleanly: the child is killed, no output or temp file remains, exit 130', async () => {
    const slow = path.join(dir, 'slow');
    fs.mkdirSync(slow);
    fs.writeFileSync(
      path.join(slow, 'jobs.json'),
      JSON.stringify({
        jobs: [
          {
            id: 'slow',
            model: path.join(dir, 'cnn.onnx'),
            output: 'out/slow.onnx',
            recipe: { mode: 'static', data: FMNIST.calibX, samples: 512, batchSize: 1 },
            gate: { data: FMNIST.valX, labels: FMNIST.valY, batchSize: 1, maxDrop: 5 },
          },
        ],
      }),
    );
    const parent = spawn(process.execPath, [BIN, 'batch', 'jobs.json'], { cwd: slow, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    parent.stderr.on('data', (d) => (stderr += d));
    // Wait until the job's child process is running, then interrupt the parent.
    let childPid: number | undefined;
    for (let i = 0; i < 100 && childPid === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const ps = spawnSync('ps', ['-o', 'pid=', '--ppid', String(parent.pid)], { encoding: 'utf8' });
      const pids = ps.stdout.trim().split(/\s+/).filter(Boolean).map(Number);
      if (pids.length) childPid = pids[0];
    }
    expect(childPid).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    parent.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => parent.on('exit', (c) => resolve(c)));
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted/);
    // Killed: gone, or a zombie waiting for init to reap it.
    const state = () => (fs.existsSync(`/proc/${childPid}/stat`) ? fs.readFileSync(`/proc/${childPid}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone');
    expect(['gone', 'Z', 'X']).toContain(state());
    const outDir = path.join(slow, 'out');
    const left = fs.existsSync(outDir) ? fs.readdirSync(outDir) : [];
    expect(left.filter((n) => n.startsWith('.qtool-tmp-'))).toEqual([]);
    expect(left).not.toContain('slow.onnx.qtool-job.json');
  });
});
