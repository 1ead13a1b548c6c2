/**
 * `qtool <command> --help` for every command, under a file snapshot: the flags, their help text and
 * defaults come from the option schemas (cli/flags.ts), so a changed schema shows up here as a diff.
 * Regenerate with `npx vitest run test/e2e/help.test.ts -u` and review the diff.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { spawnQtool } from '../helpers/spawn.js';

const COMMANDS = ['inspect', 'calibrate', 'quantize', 'sensitivity', 'search', 'eval', 'bench', 'batch', 'batch merge'];

describe('--help of every command (snapshot)', () => {
  for (const cmd of COMMANDS) {
    it(`qtool ${cmd} --help`, async () => {
      const r = spawnQtool([...cmd.split(' '), '--help']);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      await expect(r.stdout).toMatchFileSnapshot(path.join(ROOT, 'fixtures', 'golden', 'help', `${cmd.replace(' ', '-')}.txt`));
    });
  }

  it('hidden aliases of renamed flags still parse, and are not listed', () => {
    const q = spawnQtool(['quantize', '--help']).stdout;
    expect(q).toMatch(/--int4-format/);
    expect(q).not.toMatch(/--format/);
    const e = spawnQtool(['eval', '--help']).stdout;
    expect(e).toMatch(/--output-name/);
    expect(e).not.toMatch(/--output </);
    expect(e).not.toMatch(/--max-samples/);
    // A bad value through an old spelling is still read as that option (a usage error, exit 2).
    const bad = spawnQtool(['quantize', path.join(ROOT, 'fixtures', 'models', 'fmnist_mlp.onnx'), '--format', 'bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--int4-format: expected nbits, qdq, got "bogus"/);
  });
});
