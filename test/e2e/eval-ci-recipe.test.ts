/**
 * examples/ci/github-actions.yml, run locally: the `run:` blocks that call qtool are taken from the
 * YAML as written and executed with bash -e (as GitHub Actions does), with the job's env pointed at
 * the FMNIST fixtures and `npx qtool` resolved to this checkout's bin/qtool.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvalReportSchema, SensitivityReportSchema } from '../../src/documents/index.js';
import { BIN, FMNIST, ROOT } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const YAML = path.join(ROOT, 'examples/ci/github-actions.yml');

interface Step {
  name: string;
  run: string;
}

/** The job env block and the named `run: |` steps (a small line parser for this file's shape). */
function parseWorkflow(text: string): { env: Record<string, string>; steps: Step[] } {
  const lines = text.split('\n');
  const env: Record<string, string> = {};
  const steps: Step[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (/^ {4}env:\s*$/.test(lines[i])) {
      for (i++; i < lines.length && /^ {6}\S/.test(lines[i]); i++) {
        const m = /^ {6}(\w+):\s*"?([^"#]*?)"?\s*(#.*)?$/.exec(lines[i]);
        if (m) env[m[1]] = m[2];
      }
      i--;
      continue;
    }
    const name = /^ {6}- name: (.+)$/.exec(lines[i]);
    if (name && /^ {8}run: \|\s*$/.test(lines[i + 1] ?? '')) {
      const body: string[] = [];
      for (i += 2; i < lines.length && (/^ {10}/.test(lines[i]) || lines[i].trim() === ''); i++) body.push(lines[i].slice(10));
      i--;
      steps.push({ name: name[1], run: body.join('\n').trim() });
    }
  }
  return { env, steps };
}

let dir: string;
let shimDir: string;
const fixtureEnv = { MODEL: FMNIST.mlp, CALIB_X: FMNIST.calibX, CALIB_Y: FMNIST.calibY, VAL_X: FMNIST.valX, VAL_Y: FMNIST.valY };

function runStep(step: Step, env: Record<string, string>) {
  return spawnSync('bash', ['-e', '-c', step.run], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...env, GITHUB_STEP_SUMMARY: path.join(dir, 'summary.md'), PATH: `${shimDir}:${process.env.PATH}`, NO_COLOR: '1' },
    timeout: 120_000,
  });
}

const workflow = parseWorkflow(fs.readFileSync(YAML, 'utf8'));

beforeAll(() => {
  dir = makeTempDir('qtool-ci-');
  shimDir = makeTempDir('qtool-ci-bin-');
  // `npx qtool …` → this checkout's bin/qtool (in CI, npx finds the devDependency).
  fs.writeFileSync(path.join(shimDir, 'npx'), `#!/bin/sh\nif [ "$1" = qtool ]; then shift; exec "${process.execPath}" "${BIN}" "$@"; fi\necho "unexpected npx $1" >&2; exit 127\n`, { mode: 0o755 });
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shimDir, { recursive: true, force: true });
});

describe('examples/ci/github-actions.yml', () => {
  it('parses: the job env and the qtool steps', () => {
    expect(Object.keys(workflow.env).sort()).toEqual(['CALIB_X', 'CALIB_Y', 'MAX_DROP', 'MAX_LAYER_LOSS', 'MIN_ACCURACY', 'MODEL', 'VAL_X', 'VAL_Y']);
    expect(workflow.steps.map((s) => s.name)).toEqual(['Quantize to INT8', 'Layer sensitivity (gate + HTML report)', 'Accuracy gate (INT8 vs float)', 'Latency, memory and size']);
    for (const s of workflow.steps) expect(s.run).toMatch(/npx qtool (quantize|sensitivity|eval|bench) /);
  });

  it('its steps pass on the FMNIST MLP and leave the reports the upload step collects', () => {
    const env = { ...workflow.env, ...fixtureEnv };
    for (const step of workflow.steps) {
      const r = runStep(step, env);
      expect(r.status, `${step.name}\n${r.stderr}`).toBe(0);
    }
    const reports = fs.readdirSync(path.join(dir, 'reports')).sort();
    expect(reports).toEqual(['eval.json', 'model.int8.onnx', 'sensitivity.html', 'sensitivity.json']);
    expect(fs.readFileSync(path.join(dir, 'reports/sensitivity.html'), 'utf8')).toContain('<svg');
    SensitivityReportSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'reports/sensitivity.json'), 'utf8')));
    const ev = EvalReportSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'reports/eval.json'), 'utf8')));
    expect(ev.gate).toMatchObject({ passed: true, metric: 'accuracy' });
    expect(ev.value).toBeGreaterThan(0.88);
    const summary = fs.readFileSync(path.join(dir, 'summary.md'), 'utf8');
    expect(summary).toMatch(/gate passed/);
    expect(summary).toMatch(/\| metric \| fmnist_mlp\.onnx \| model\.int8\.onnx \|/);
  });

  it('the gates fail the job (exit 4) when the thresholds are not met', () => {
    const evalStep = workflow.steps.find((s) => s.name.startsWith('Accuracy gate'))!;
    const r = runStep(evalStep, { ...workflow.env, ...fixtureEnv, MIN_ACCURACY: '0.99' });
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/E_FAIL_UNDER/);
    const sensStep = workflow.steps.find((s) => s.name.startsWith('Layer sensitivity'))!;
    const s = runStep(sensStep, { ...workflow.env, ...fixtureEnv, MAX_LAYER_LOSS: '0' });
    expect(s.status).toBe(4);
    // The HTML report is still written for the upload step.
    expect(fs.existsSync(path.join(dir, 'reports/sensitivity.html'))).toBe(true);
  });
});
