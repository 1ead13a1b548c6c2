import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCUMENT_SCHEMAS, documentJsonSchema } from '../../src/documents/index.js';
import { ROOT } from '../helpers/paths.js';

// The published JSON Schemas in schemas/ must match the zod schemas. Regenerate with
// `npm run build && npm run schemas` (or `npx vitest run test/documents -u`) and review the diff.
describe('published JSON Schemas', () => {
  for (const name of DOCUMENT_SCHEMAS.keys()) {
    it(`schemas/${name}.schema.json matches the zod schema`, async () => {
      const json = documentJsonSchema(name);
      expect(json.type).toBe('object');
      await expect(`${JSON.stringify(json, null, 2)}\n`).toMatchFileSnapshot(path.join(ROOT, 'schemas', `${name}.schema.json`));
    });
  }

  it('every versioned document pins its kind and version', () => {
    for (const name of DOCUMENT_SCHEMAS.keys()) {
      const props = documentJsonSchema(name).properties as Record<string, { const?: unknown }>;
      expect(typeof props.kind?.const, name).toBe('string');
      expect(props.version?.const, name).toBe(1);
    }
  });

  it('no schema file is left over from a removed document', () => {
    const files = fs.readdirSync(path.join(ROOT, 'schemas')).filter((f) => f.endsWith('.schema.json'));
    expect(files.sort()).toEqual([...DOCUMENT_SCHEMAS.keys()].map((n) => `${n}.schema.json`).sort());
  });
});
