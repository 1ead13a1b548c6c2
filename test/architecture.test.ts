/**
 * The dependency rule of STYLE.md, checked on every import in src/:
 * L0 errors, files, tensor → L1 onnx, quant, documents → L2 data, runtime →
 * L3 calibrate, sensitivity, search, rewrite, bench, report → L4 pipeline → L5 index.ts → L6 cli.
 * A new folder under src/ fails this test until it is added to MODULES.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

const SRC = path.join(ROOT, 'src');

/** Module → level. Root files are modules of their own (errors.ts → "errors"). */
const MODULES: Readonly<Record<string, number>> = {
  errors: 0, files: 0.5, tensor: 0.5, // files and tensor may import errors, not each other
  onnx: 1, quant: 1, documents: 1, // L1 siblings may import each other (onnx/inspect.ts uses documents' types)
  fixtures: 2.5, // the synthetic model generator (a dev tool): L0 to L2, writes .npy input sets via data/
  data: 2, runtime: 2,
  calibrate: 3, sensitivity: 3, search: 3, rewrite: 3, bench: 3, report: 3,
  pipeline: 4,
  index: 5,
  cli: 6,
};
/** Levels whose modules may import each other. */
const SIBLINGS_ALLOWED = new Set([1]);
/** Packages only some modules may import ('node:*' is free for all). */
const PACKAGE_OWNERS: Readonly<Record<string, readonly string[]>> = {
  'onnxruntime-node': ['runtime'],
  commander: ['cli'],
};
/** Known exceptions, each with its reason; the test fails when one is no longer needed. */
const EXCEPTIONS: readonly (readonly [from: string, spec: string, reason: string])[] = [];

/** Packages each module may import at all (default: any listed dependency except the owned ones). */
const CLI_PACKAGES = new Set(['commander']);

function moduleOf(rel: string): string {
  const parts = rel.split('/');
  return parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0];
}

/** The file an import lands on inside its module's folder ("index.ts" for the front door). */
function entryOf(rel: string): string {
  const parts = rel.split('/');
  return parts.length === 1 ? parts[0] : parts.slice(1).join('/');
}

/** One violation message, or undefined when `from` (path relative to src/) may import `spec`. */
export function checkImport(from: string, spec: string): string | undefined {
  const a = moduleOf(from);
  const la = MODULES[a];
  if (la === undefined) return `${from}: module "${a}" is not in the dependency table of test/architecture.test.ts`;
  if (!spec.startsWith('.')) {
    if (spec.startsWith('node:')) return undefined;
    const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    const owners = PACKAGE_OWNERS[pkg];
    if (owners && !owners.includes(a)) return `${from}: only ${owners.join(', ')} may import ${pkg}`;
    if (pkg === 'onnx-buf' && from !== 'onnx/proto.ts') return `${from}: only onnx/proto.ts names the onnx-buf schema`;
    if (a === 'cli' && !CLI_PACKAGES.has(pkg)) return `${from}: the CLI imports only src/index.ts, its own files and commander, got ${pkg}`;
    return undefined;
  }
  if (!spec.endsWith('.js')) return `${from}: ESM import "${spec}" must end in .js`;
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.js$/, '.ts');
  if (target.startsWith('..')) return `${from}: "${spec}" leaves src/`;
  const b = moduleOf(target);
  if (a === b) return undefined;
  const lb = MODULES[b];
  if (lb === undefined) return `${from}: imports unknown module "${b}"`;
  const entry = entryOf(target);
  if (target.includes('/') && entry !== 'index.ts') return `${from}: "${spec}" reaches inside ${b}/; import ${b}/index.js`;
  // The CLI calls the library through src/index.ts only; it reads the option schemas (documents/, pure zod,
  // no native binding) at registration to build flags, help text and defaults (cli/flags.ts).
  if (a === 'cli' && b !== 'index' && b !== 'documents') return `${from}: the CLI imports only src/index.ts (and documents/ for the option schemas), got "${spec}"`;
  if (a === 'fixtures' && lb > 2) return `${from}: the fixtures generator imports only L0-L2 modules, got ${b} (L${lb})`;
  if (lb < la) return undefined;
  if (lb === la && SIBLINGS_ALLOWED.has(Math.floor(la))) return undefined;
  if (lb === la) return `${from}: ${a} and ${b} are both L${la}; siblings never import each other (pass a function in from the pipeline)`;
  return `${from}: ${a} (L${la}) must not import ${b} (L${lb}): imports point downward only`;
}

/** Every module specifier in a TypeScript source: static, re-export, side-effect and dynamic imports. */
export function importsOf(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.push(m[1]);
  return specs;
}

/**
 * The run-time imports of a source (what Node loads): type-only imports and re-exports
 * (`import type`, `export type`, `import { type A, type B }`) are erased by tsc and left out.
 */
export function runtimeImportsOf(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  for (const m of text.matchAll(/\b(import|export)\s+(type\s+)?([^'";]*?)\bfrom\s*['"]([^'"]+)['"]/g)) {
    if (m[2]) continue;
    const braces = /^\{([\s\S]*)\}\s*$/.exec(m[3].trim());
    if (braces) {
      const names = braces[1].split(',').map((x) => x.trim()).filter(Boolean);
      if (names.length > 0 && names.every((x) => x.startsWith('type '))) continue;
    }
    specs.push(m[4]);
  }
  for (const re of [/\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) for (const m of text.matchAll(re)) specs.push(m[1]);
  return specs;
}

/** The import cycles of a file graph (strongly connected components of more than one file, or a self-import), each sorted. */
export function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('architecture: the dependency rule', () => {
  it('the checker catches violations (self-test on a synthetic import list)', () => {
    const bad: [string, string, RegExp][] = [
      ['search/order.ts', '../calibrate/index.js', /siblings never import/],
      ['rewrite/apply-plan.ts', '../sensitivity/index.js', /siblings/],
      ['onnx/model.ts', '../runtime/index.js', /must not import runtime/],
      ['tensor/tensor.ts', '../onnx/index.js', /must not import onnx/],
      ['files.ts', './tensor/index.js', /siblings|must not/],
      ['errors.ts', './files.js', /must not import files/],
      ['quant/affine.ts', 'onnxruntime-node', /only runtime may import onnxruntime-node/],
      ['pipeline/eval.ts', 'onnxruntime-node', /only runtime/],
      ['calibrate/augment.ts', '../onnx/graph-index.js', /reaches inside onnx\//],
      ['cli/commands/inspect.ts', '../../onnx/index.js', /CLI imports only src\/index.ts/],
      ['cli/main.ts', '../pipeline/index.js', /CLI imports only/],
      ['cli/main.ts', 'zod', /CLI imports only/],
      ['fixtures/synthetic.ts', '../calibrate/index.js', /fixtures generator imports only L0-L2/],
      ['onnx/model.ts', './proto', /must end in \.js/],
      ['newstage/x.ts', '../onnx/index.js', /not in the dependency table/],
      ['runtime/session.ts', '../../outside.js', /leaves src/],
      ['rewrite/emit-qdq.ts', 'onnx-buf', /only onnx\/proto.ts/],
      ['index.ts', './cli/index.js', /must not import cli/],
      ['report/text.ts', '../pipeline/index.js', /must not import pipeline/],
    ];
    for (const [from, spec, re] of bad) expect(checkImport(from, spec), `${from} → ${spec}`).toMatch(re);
    const good: [string, string][] = [
      ['files.ts', './errors.js'],
      ['tensor/tensor.ts', '../errors.js'],
      ['onnx/inspect.ts', '../documents/index.js'],
      ['onnx/tensor-proto.ts', '../tensor/index.js'],
      ['onnx/model.ts', '@bufbuild/protobuf'],
      ['onnx/proto.ts', 'onnx-buf'],
      ['runtime/session.ts', 'onnxruntime-node'],
      ['runtime/session.ts', '../onnx/index.js'],
      ['calibrate/x.ts', '../runtime/index.js'],
      ['calibrate/observers/minmax.ts', '../observer.js'],
      ['pipeline/quantize.ts', '../calibrate/index.js'],
      ['index.ts', './pipeline/index.js'],
      ['index.ts', './files.js'],
      ['cli/commands/inspect.ts', '../../index.js'],
      ['cli/commands/inspect.ts', '../output.js'],
      ['cli/commands/quantize.ts', '../../documents/index.js'],
      ['cli/main.ts', 'commander'],
      ['cli/main.ts', 'node:process'],
      ['fixtures/cnn.ts', '../onnx/index.js'],
    ];
    for (const [from, spec] of good) expect(checkImport(from, spec), `${from} → ${spec}`).toBeUndefined();
  });

  it('the import parser sees static, type-only, multi-line, re-export and dynamic imports, not comments', () => {
    const src = [
      "import * as fs from 'node:fs';",
      "import type { A } from './a.js';",
      'import {',
      '  B,',
      '  C,',
      "} from '../b/index.js';",
      "export * from './c.js';",
      "export { D } from './d.js';",
      "import './side.js';",
      "const m = await import('../../index.js');",
      "// import { X } from '../commented.js';",
      "/* import { Y } from '../block.js'; */",
      "const s = 'from here';",
    ].join('\n');
    expect(importsOf(src).sort()).toEqual(['../../index.js', '../b/index.js', './a.js', './c.js', './d.js', './side.js', 'node:fs'].sort());
  });

  it('every import in src/ follows the rule', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(30);
    const violations: string[] = [];
    const excepted = new Set<string>();
    let count = 0;
    for (const file of files) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
        count++;
        const v = checkImport(rel, spec);
        if (!v) continue;
        if (EXCEPTIONS.some(([f, s]) => f === rel && s === spec)) excepted.add(`${rel} ${spec}`);
        else violations.push(v);
      }
    }
    expect(count).toBeGreaterThan(100);
    expect(violations).toEqual([]);
    // An exception that no longer matches a violating import must be deleted from the list.
    expect(EXCEPTIONS.map(([f, s]) => `${f} ${s}`).filter((k) => !excepted.has(k))).toEqual([]);
  });

  it('the cycle finder sees cycles and type-only imports are not run-time imports', () => {
    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']], ['e', ['e']]]);
    expect(cyclesOf(g)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(cyclesOf(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
    const src = ["import type { A } from './a.js';", "import { type B, type C } from './b.js';", "import { type D, E } from './d.js';", "export type { F } from './f.js';", "export { G } from './g.js';", "const h = await import('./h.js');"].join('\n');
    expect(runtimeImportsOf(src).sort()).toEqual(['./d.js', './g.js', './h.js']);
  });

  it('no import cycle between any two files of src/ (run-time imports)', () => {
    const graph = new Map<string, string[]>();
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      const deps = runtimeImportsOf(fs.readFileSync(file, 'utf8'))
        .filter((s) => s.startsWith('.'))
        .map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(rel), s)).replace(/\.js$/, '.ts'));
      graph.set(rel, deps);
    }
    expect(graph.size).toBeGreaterThan(30);
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('every folder in src/ is in the table', () => {
    const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.filter((f) => MODULES[f] === undefined)).toEqual([]);
  });
});
