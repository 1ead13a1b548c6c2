/**
 * Kill harness: `qtool quantize` and `qtool calibrate` interrupted by SIGINT or killed by SIGKILL at
 * several points. Whatever the moment: no partial output (an output is absent or complete), the
 * inputs are unchanged, SIGINT leaves no temp file, and after SIGKILL the next run removes the dead
 * run's temp files when it starts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/index.js';
import { BIN, FMNIST } from '../helpers/paths.js';
import { spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('qtool-kill-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const hash = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

function runKilled(args: string[], signal: NodeJS.Signals, delayMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; pid: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill(signal), delayMs);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, pid: child.pid!, stderr });
    });
  });
}

/** Temp files of process `pid`: next to the outputs and in the system temp folder. */
function tempsOf(dir: string, pid: number): string[] {
  return [...fs.readdirSync(dir).filter((f) => f.startsWith(`.qtool-tmp-${pid}-`)), ...fs.readdirSync(os.tmpdir()).filter((f) => new RegExp(`^qtool-[a-z]+-${pid}-`).test(f))];
}

const CASES = [
  { name: 'quantize static --external-data', out: 'q.onnx', args: (d: string) => ['quantize', path.join(d, 'cnn.onnx'), '--data', path.join(d, 'x.npy'), '-o', path.join(d, 'q.onnx'), '--external-data', '--force'], complete: (f: string) => loadModel(f) },
  { name: 'calibrate', out: 'c.json', args: (d: string) => ['calibrate', path.join(d, 'cnn.onnx'), '--data', path.join(d, 'x.npy'), '-o', path.join(d, 'c.json'), '--force'], complete: (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) },
];

describe('kill harness', () => {
  for (const c of CASES) {
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      it(`${c.name}: ${signal} at 2 points leaves no partial output, inputs unchanged, no temp after the next start`, async () => {
        for (const delayMs of [300, 1500]) {
          const d = path.join(tmp, `${c.out}-${signal}-${delayMs}`);
          fs.mkdirSync(d);
          fs.copyFileSync(FMNIST.cnn, path.join(d, 'cnn.onnx'));
          fs.copyFileSync(FMNIST.calibX, path.join(d, 'x.npy'));
          const before = { model: hash(path.join(d, 'cnn.onnx')), data: hash(path.join(d, 'x.npy')) };
          const r = await runKilled(c.args(d), signal, delayMs);
          // Inputs never change.
          expect(hash(path.join(d, 'cnn.onnx'))).toBe(before.model);
          expect(hash(path.join(d, 'x.npy'))).toBe(before.data);
          // An output is absent or complete (atomic rename; for the model, its data file too).
          const out = path.join(d, c.out);
          if (fs.existsSync(out)) expect(() => c.complete(out)).not.toThrow();
          if (signal === 'SIGINT') {
            // Interrupted (130, "interrupted"), already done (0), or so early that node had not started
            // our handler yet (killed by the signal: the shell shows 130 too); never any temp file left.
            expect(r.code === 0 || r.code === 130 || r.signal === 'SIGINT').toBe(true);
            if (r.code === 130) expect(r.stderr.endsWith('qtool: interrupted\n')).toBe(true);
            expect(r.stderr).not.toMatch(/\n\s+at /);
            expect(tempsOf(d, r.pid)).toEqual([]);
          } else {
            expect(r.signal === 'SIGKILL' || r.code === 0).toBe(true);
            // The next run (of any command writing there) sweeps the dead run's temp files at its start.
            const next = spawnQtool(['calibrate', path.join(d, 'cnn.onnx'), '--data', path.join(d, 'x.npy'), '--samples', '4', '-o', path.join(d, 'next.json'), '--force']);
            expect(next.code).toBe(0);
            expect(tempsOf(d, r.pid)).toEqual([]);
          }
        }
      }, 180_000);
    }
  }
});
