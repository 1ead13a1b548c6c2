/**
 * The package as published: `npm pack` of this checkout, installed into an empty folder with the README's
 * one command while the network is closed to onnxruntime-node's install script, then used the way a user
 * would: `npx qtool quantize`, `import … from 'qtool'`, `qtool/schemas/*.json`, and a consumer .ts
 * type-checked with the project's (current) TypeScript and no skipLibCheck.
 *
 * How the install stays offline: npm itself runs with `--offline` from its cache. `npm ci` in a clone
 * stores every tarball there by integrity, but not the registry metadata that resolving `^x.y` ranges needs,
 * so the temp app gets a package-lock.json made of this repository's lock entries for the production
 * dependencies (the versions a user gets today) plus the packed tarball. When the cache lacks a tarball
 * (node_modules copied in, cache cleaned) the install retries with `--prefer-offline`, which may use the
 * registry for npm itself but still not for the install script. The install script's own downloads go
 * through global-agent, which honours GLOBAL_AGENT_HTTP_PROXY: pointing that at a closed local port
 * makes any download attempt fail at once. The negative control shows that without the skip setting the
 * same install fails, so the test can fail.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FMNIST, ROOT } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

interface PackResult {
  filename: string;
  integrity: string;
  files: { path: string }[];
}

const NPM_CLI = (() => {
  // Use the npm that runs this Node (the same one `npm test` runs under) without going through a shell.
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.js$/.test(fromEnv)) return fromEnv;
  const guess = path.join(path.dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js');
  return guess;
})();

/** Environment for the install: no network for the install script, npm's own config from this user. */
function installEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GLOBAL_AGENT_HTTP_PROXY: 'http://127.0.0.1:9', GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9', ...extra };
  // Settings inherited from an outer `npm test` (npm_config_*) must not leak into the user's install.
  // (`npm test` exports this repository's .npmrc as npm_config_onnxruntime_node_install=skip.) Where npm
  // keeps its cache and registry settings is kept.
  const keep = /^npm_config_(cache|userconfig|globalconfig|registry|proxy|https_proxy|noproxy|cafile|strict_ssl)$/i;
  for (const k of Object.keys(env)) if ((/^npm_(config|package|lifecycle)_/i.test(k) && !keep.test(k)) || k === 'ONNXRUNTIME_NODE_INSTALL') delete env[k];
  Object.assign(env, extra);
  return env;
}

function npm(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [NPM_CLI, ...args], { cwd, env, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
}

let work: string;
let pack: PackResult;
let tarball: string;

/** An empty app folder whose lock pins qtool's production dependencies as this repository's lock does. */
function makeApp(name: string): string {
  const app = path.join(work, name);
  fs.mkdirSync(app);
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const pj = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const spec = `file:../${pack.filename}`;
  const packages: Record<string, unknown> = {
    '': { name, version: '1.0.0', dependencies: { qtool: spec } },
    'node_modules/qtool': { version: pj.version, resolved: spec, integrity: pack.integrity, license: pj.license, dependencies: pj.dependencies, bin: pj.bin, engines: pj.engines },
  };
  for (const [k, v] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) if (k !== '' && !v.dev) packages[k] = v;
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module', dependencies: { qtool: spec } }, null, 2));
  fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
  return app;
}

/** `npm install <tarball>` offline (retrying with --prefer-offline when the cache lacks a tarball). */
function install(app: string, extraEnv: Record<string, string>): SpawnSyncReturns<string> {
  const args = ['install', `../${pack.filename}`, '--no-audit', '--no-fund', '--foreground-scripts'];
  const env = installEnv(extraEnv);
  const r = npm([...args, '--offline'], app, env);
  if (r.status !== 0 && /ENOTCACHED/.test(r.stderr)) return npm([...args, '--prefer-offline'], app, env);
  return r;
}

beforeAll(() => {
  work = makeTempDir('qtool-pack-');
  // dist/ is built by `npm test` (tsc) before vitest runs; --ignore-scripts keeps `prepack`/`prepare` from
  // rebuilding dist/ under the other test files that are using it.
  expect(fs.existsSync(path.join(ROOT, 'dist/index.js')), 'build first: npx tsc -p .').toBe(true);
  const r = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT, installEnv({}));
  expect(r.status, r.stderr).toBe(0);
  pack = (JSON.parse(r.stdout) as PackResult[])[0];
  tarball = path.join(work, pack.filename);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships dist, bin, schemas, LICENSE, README and the files README links to; no fixtures, sources or tests', () => {
    const files = pack.files.map((f) => f.path);
    for (const f of ['LICENSE', 'README.md', 'package.json', 'bin/qtool', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'schemas/plan.schema.json']) expect(files).toContain(f);
    expect(files.filter((f) => /^(dist\/fixtures|fixtures|src|test|scripts|\.ci)\//.test(f))).toEqual([]);
    expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(fs.statSync(tarball).size).toBeLessThan(2 * 1024 * 1024);
    // Every relative README link must resolve inside the tarball (a file, or a folder with files in it).
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/i.test(l));
    expect(links.length).toBeGreaterThan(0);
    const missing = links.filter((l) => {
      const p = path.posix.normalize(l).replace(/\/$/, '');
      return !files.includes(p) && !files.some((f) => f.startsWith(`${p}/`));
    });
    expect(missing, 'README links to files the package does not ship').toEqual([]);
  });

  it('package.json: exports with types/import/default, schemas subpath, repository, homepage', () => {
    const pj = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(Object.keys(pj.exports['.'])).toEqual(['types', 'import', 'default']);
    expect(pj.exports['./schemas/*.json']).toBe('./schemas/*.json');
    expect(pj.license).toBe('MIT');
    expect(pj.repository.url).toMatch(/^git\+https:\/\//);
    expect(pj.homepage).toMatch(/^https:\/\//);
  });
});

describe('npm install <tarball> in an empty folder, network closed to install scripts', () => {
  it('without the skip setting, onnxruntime-node’s install script tries to download and the install fails', () => {
    if (process.platform !== 'linux' || process.arch !== 'x64') return; // only linux/x64 downloads (CUDA EP)
    const app = makeApp('app-no-skip');
    const r = install(app, {});
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/onnxruntime-node/);
    expect(r.stdout + r.stderr).toMatch(/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT/);
    fs.rmSync(app, { recursive: true, force: true });
  });

  let app: string;
  it('ONNXRUNTIME_NODE_INSTALL=skip npm install qtool-x.y.z.tgz succeeds', () => {
    app = makeApp('app');
    const r = install(app, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(fs.existsSync(path.join(app, 'node_modules/qtool/dist/index.js'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'node_modules/qtool/dist/fixtures'))).toBe(false);
  });

  it('npx qtool quantize runs from the installed package', () => {
    const out = path.join(app, 'mlp.int8.onnx');
    const r = spawnSync('npx', ['--no-install', 'qtool', 'quantize', FMNIST.mlp, '--bits', '8', '-o', out], { cwd: app, env: installEnv({ NO_COLOR: '1' }), encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/DynamicQuantizeMatMul/);
    expect(fs.statSync(out).size).toBeLessThan(fs.statSync(FMNIST.mlp).size * 0.35);
  });

  it("import … from 'qtool' and 'qtool/schemas/*.json' resolve through exports", () => {
    const script = `
import { inspectModel, loadModel, quantize, QtoolError } from 'qtool';
import planSchema from 'qtool/schemas/plan.schema.json' with { type: 'json' };
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const s = inspectModel(loadModel(${JSON.stringify(FMNIST.cnn)}));
console.log(JSON.stringify({ layers: s.quantizableLayers.length, quantize: typeof quantize, error: typeof QtoolError, schema: typeof planSchema.properties, resolved: require.resolve('qtool/schemas/plan.schema.json') }));
`;
    fs.writeFileSync(path.join(app, 'main.mjs'), script);
    const r = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ layers: 8, quantize: 'function', error: 'function', schema: 'object' });
    expect(fs.realpathSync(out.resolved)).toBe(fs.realpathSync(path.join(app, 'node_modules/qtool/schemas/plan.schema.json')));
  });

  it('a consumer .ts type-checks against the installed .d.ts (strict, no skipLibCheck, no @types/node), nodenext and bundler', () => {
    fs.writeFileSync(
      path.join(app, 'consumer.ts'),
      `import { quantize, inspectModel, loadModel, QtoolError, type Plan, type QuantizeSummary } from 'qtool';
const s = inspectModel(loadModel('m.onnx'));
const r = await quantize('m.onnx', { bits: 8, output: 'o.onnx' });
export const summary: QuantizeSummary = r.summary;
export const layers: number = s.quantizableLayers.length;
export let plan: Plan | undefined;
export const isQtool = (e: unknown): boolean => e instanceof QtoolError && e.exitCode > 0;
// @ts-expect-error bits must be a number
await quantize('m.onnx', { bits: '8' });
`,
    );
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    const configs = {
      'tsconfig.nodenext.json': { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' },
      'tsconfig.bundler.json': { module: 'esnext', moduleResolution: 'bundler', target: 'es2022' },
    };
    for (const [file, opts] of Object.entries(configs)) {
      fs.writeFileSync(path.join(app, file), JSON.stringify({ compilerOptions: { ...opts, strict: true, noEmit: true, skipLibCheck: false }, files: ['consumer.ts'] }));
      const r = spawnSync(process.execPath, [tsc, '-p', file], { cwd: app, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });
});

describe('npm install in a clone', () => {
  it('leaves package-lock.json byte-identical', () => {
    const dir = path.join(work, 'clone');
    fs.mkdirSync(dir);
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    const before = fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8');
    let r = npm(['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--offline'], dir, installEnv({}));
    if (r.status !== 0 && /ENOTCACHED/.test(r.stderr)) r = npm(['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], dir, installEnv({}));
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8')).toBe(before);
  });
});
