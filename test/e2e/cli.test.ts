import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { BIN, FMNIST, ROOT } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

describe('qtool CLI', () => {
  it('bin/qtool is the package executable', () => {
    expect(pkg.bin.qtool).toBe('bin/qtool');
    const src = fs.readFileSync(path.join(ROOT, 'bin/qtool'), 'utf8');
    expect(src.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('--help and -h exit 0 and list the inspect command on stdout', () => {
    for (const flag of ['--help', '-h']) {
      const r = spawnQtool([flag]);
      expect(r.code).toBe(EXIT_CODES.ok);
      expect(r.stdout).toMatch(/^Usage: qtool \[options\] \[command\]/);
      expect(r.stdout).toMatch(/\n\s+inspect \[options\] <model>/);
      expect(r.stdout).toContain('--verbose');
    }
    const sub = spawnQtool(['inspect', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/^Usage: qtool inspect \[options\] <model>/);
    expect(sub.stdout).toContain('--json');
    expect(spawnQtool(['help', 'inspect']).code).toBe(0);
  });

  it('--version prints the package version and exits 0', () => {
    for (const flag of ['--version', '-V']) {
      const r = spawnQtool([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
  });

  it.each([
    ['no command', [], /Usage: qtool/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown option', ['inspect', '--frob', FMNIST.cnn], /unknown option '--frob'/],
    ['a missing argument', ['inspect'], /missing required argument 'model'/],
    ['too many arguments', ['inspect', FMNIST.cnn, FMNIST.mlp], /too many arguments|excess arguments/],
  ])('%s is a usage error: exit 2, message on stderr, nothing on stdout', (_name, args, re) => {
    const r = spawnQtool(args);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(re);
    expect(hasStackTrace(r.stderr)).toBe(false);
  });

  it('a missing input file: exit 3, one line naming the file', () => {
    const r = spawnQtool(['inspect', 'no/such/model.onnx'], { cwd: ROOT });
    expect(r.code).toBe(EXIT_CODES.input);
    expect(r.stderr).toBe('qtool: error E_READ: no/such/model.onnx: no such file\n');
    expect(r.stdout).toBe('');
  });

  it('an unsupported IR version and a missing external data file: exit 3, one line each', () => {
    const dir = makeTempDir('qtool-e2e-cli-');
    try {
      const m = loadModel(FMNIST.mlp);
      m.proto.irVersion = 99n;
      saveModel(m, path.join(dir, 'ir99.onnx'));
      const r = spawnQtool(['inspect', 'ir99.onnx'], { cwd: dir });
      expect(r.code).toBe(3);
      expect(r.stderr).toBe('qtool: error E_IR_VERSION: ir99.onnx: unsupported IR version 99: expected 3..13\n');
      saveModel(loadModel(FMNIST.mlp), path.join(dir, 'ext.onnx'), { externalData: true });
      fs.rmSync(path.join(dir, 'ext.onnx.data'));
      const x = spawnQtool(['inspect', 'ext.onnx'], { cwd: dir });
      expect(x.code).toBe(3);
      expect(x.stderr).toMatch(/^qtool: error E_EXTERNAL_DATA: ext\.onnx: external data file "ext\.onnx\.data" of tensor "[^"]+": no such file\n$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--verbose adds the stack trace (as a global or a command flag)', () => {
    for (const args of [['--verbose', 'inspect', 'missing.onnx'], ['inspect', 'missing.onnx', '--verbose']]) {
      const r = spawnQtool(args, { cwd: ROOT });
      expect(r.code).toBe(3);
      expect(r.stderr.split('\n')[0]).toBe('qtool: error E_READ: missing.onnx: no such file');
      expect(hasStackTrace(r.stderr)).toBe(true);
    }
  });

  it('--help and usage errors never load the library or onnxruntime-node (lazy imports)', () => {
    const probe = (args: string[]) => {
      const script = [
        "import { createRequire } from 'node:module';",
        `process.argv = [process.argv[0], 'qtool', ...${JSON.stringify(args)}];`,
        `await import(${JSON.stringify(new URL(`file://${path.join(ROOT, 'dist/cli/main.js')}`).href)});`,
        "process.on('exit', () => {",
        '  const cache = Object.keys(createRequire(import.meta.url).cache);',
        "  process.stderr.write('\\nORT=' + cache.some((k) => k.includes('onnxruntime-node')) + '\\n');",
        '});',
      ].join('\n');
      // The probe is the command process itself (the Ctrl-C supervisor around it never loads the library).
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, QTOOL_NO_SUPERVISOR: '1' } });
      return /ORT=(true|false)/.exec(r.stderr)?.[1];
    };
    expect(probe(['--help'])).toBe('false');
    expect(probe(['inspect', '--frob'])).toBe('false');
    expect(probe(['inspect', FMNIST.mlp, '--json'])).toBe('true'); // the probe can see it when it is loaded
    expect(fs.existsSync(BIN)).toBe(true);
  });

  it('exit 0 on success with the JSON document alone on stdout', () => {
    const r = spawnQtool(['inspect', '--json', FMNIST.cnn]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).kind).toBe('qtool.model-summary');
  });
});
