import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SensitivityReportSchema } from '../../src/documents/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('qtool sensitivity (e2e)', () => {
  it('writes JSON, Markdown and HTML, and --fail-over exits 4 after writing', () => {
    const dir = makeTempDir('qtool-sens-e2e-');
    const r = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--probes', '2', '--samples', '16', '-o', 'r.json', '--html', 'r.html', '--markdown', '--fail-over', '1e-9'], { cwd: dir });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/E_FAIL_OVER/);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const report = SensitivityReportSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'r.json'), 'utf8')));
    expect(report.layers).toHaveLength(3);
    const html = fs.readFileSync(path.join(dir, 'r.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it('rejects a bad --loss with exit 2', () => {
    const r = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--loss', 'nope']);
    expect(r.code).toBe(2);
    expect(hasStackTrace(r.stderr)).toBe(false);
  });
});
