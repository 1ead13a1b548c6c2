/**
 * The public surface of `qtool` (src/index.ts) under a snapshot: every exported name with its kind
 * (class, function, const, type). A change of the public API is then a visible diff of
 * fixtures/golden/api.txt. Regenerate with `npx vitest run test/api/surface.test.ts -u`, review, commit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';
import { ROOT } from '../helpers/paths.js';

const INDEX = path.join(ROOT, 'src', 'index.ts');

/** The names src/index.ts lists, with `type` for type-only ones; comments stripped. */
function listedNames(source: string): { name: string; isType: boolean }[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const out: { name: string; isType: boolean }[] = [];
  for (const m of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s*from/g)) {
    for (const raw of m[2].split(',').map((s) => s.trim()).filter(Boolean)) {
      const isType = Boolean(m[1]) || raw.startsWith('type ');
      const name = raw.replace(/^type\s+/, '').split(/\s+as\s+/).pop()!;
      out.push({ name, isType });
    }
  }
  return out;
}

function kindOf(value: unknown): string {
  if (typeof value === 'function') return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
  return 'const';
}

describe('public API surface (src/index.ts)', () => {
  const source = fs.readFileSync(INDEX, 'utf8');

  it('is an explicit list: no export *', () => {
    expect(source.replace(/\/\*[\s\S]*?\*\//g, '')).not.toMatch(/export\s+\*/);
  });

  it('every listed value is exported at run time, and nothing else is', () => {
    const listed = listedNames(source);
    const values = listed.filter((n) => !n.isType).map((n) => n.name).sort();
    expect(Object.keys(api).sort()).toEqual(values);
    expect(new Set(listed.map((n) => n.name)).size).toBe(listed.length);
  });

  it('names and kinds match the snapshot', async () => {
    const lines = listedNames(source)
      .map((n) => `${n.isType ? 'type' : kindOf((api as Record<string, unknown>)[n.name])} ${n.name}`)
      .sort((a, b) => (a.split(' ')[1].toLowerCase() < b.split(' ')[1].toLowerCase() ? -1 : 1));
    await expect(`${lines.join('\n')}\n`).toMatchFileSnapshot(path.join(ROOT, 'fixtures', 'golden', 'api.txt'));
  });
});
