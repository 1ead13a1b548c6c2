/**
 * Every runnable README example runs as written, in order, from a fresh copy of the repository.
 * Which blocks run and how to mark the others: test/helpers/readme-blocks.ts (and README, Development).
 *
 * The copy holds the files git would clone (tracked plus untracked, not ignored), with node_modules/
 * and dist/ linked from this checkout, which `npm ci` and `npm test`'s build have already made. Each block
 * runs with `bash -e -o pipefail` in the copy's root, NO_COLOR=1, and `/tmp/` in its text pointing at a
 * fresh folder, so a second run cannot trip over the first one's outputs (models are never overwritten
 * without --force).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { extractBlocks } from '../helpers/readme-blocks.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('README example extractor', () => {
  it('runs sh/bash/shell fences in order, honours skip and exit directives, ignores other fences', () => {
    const md = [
      '## A', '```sh', 'echo one', '```', '```text', 'qtool x [--flag]', '```',
      '<!-- readme-test: skip (installs) -->', '', '```bash', 'npm install', '```',
      '- item', '  ````shell', '  echo two', '  ```', '  still two', '  ````',
      '### B', '<!-- readme-test: exit 4 -->', '~~~sh', 'exit 4', '~~~', '```json', '{"a": 1}', '```', '```', 'plain', '```',
    ].join('\n');
    const b = extractBlocks(md);
    expect(b.map((x) => [x.line, x.lang, x.code, x.heading, x.skip, x.expectExit])).toEqual([
      [2, 'sh', 'echo one', 'A', undefined, 0],
      [10, 'bash', 'npm install', 'A', 'installs', 0],
      [14, 'shell', 'echo two\n```\nstill two', 'A', undefined, 0],
      [21, 'sh', 'exit 4', 'B', undefined, 4],
    ]);
    expect(() => extractBlocks('<!-- readme-test: exit four -->\n```sh\nx\n```')).toThrow(/exit needs a number/);
  });
});

const blocks = extractBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
let copy: string;
let tmp: string;

function repositoryFiles(): string[] {
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ls-files failed in ${ROOT}: ${r.stderr}`);
  return r.stdout.split('\0').filter((f) => f && fs.existsSync(path.join(ROOT, f)));
}

describe('README examples, as written, in order', () => {
  beforeAll(() => {
    const base = makeTempDir('qtool-readme-');
    copy = path.join(base, 'clone');
    tmp = path.join(base, 'tmp');
    fs.mkdirSync(tmp);
    for (const f of repositoryFiles()) {
      const to = path.join(copy, f);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), to);
    }
    fs.chmodSync(path.join(copy, 'bin/qtool'), 0o755);
    for (const d of ['node_modules', 'dist']) fs.symlinkSync(path.join(ROOT, d), path.join(copy, d), 'dir');
  });
  afterAll(() => fs.rmSync(path.dirname(copy), { recursive: true, force: true }));

  it('has runnable examples', () => {
    expect(blocks.filter((b) => !b.skip).length).toBeGreaterThan(5);
  });

  for (const b of blocks) {
    const name = `README.md:${b.line} (${b.heading}): ${b.code.split('\n').find((l) => l.trim() && !l.trim().startsWith('#'))?.trim().slice(0, 80) ?? ''}`;
    if (b.skip) {
      it.skip(`${name} [skip: ${b.skip}]`, () => {});
      continue;
    }
    it(name, () => {
      const code = b.code.replaceAll('/tmp/', `${tmp}/`);
      const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', code], {
        cwd: copy,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp },
        timeout: 300_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(r.status, `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}\n--- block ---\n${b.code}\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`).toBe(b.expectExit);
    });
  }
});
