import { spawnSync } from 'node:child_process';
import { BIN } from './paths.js';

export interface SpawnResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real bin/qtool as a user would. */
export function spawnQtool(args: readonly string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): SpawnResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** True when stderr holds a JavaScript stack trace. */
export function hasStackTrace(stderr: string): boolean {
  return /\n\s+at .+:\d+:\d+\)?/.test(stderr);
}
