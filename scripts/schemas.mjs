// Writes schemas/<name>.schema.json for every qtool document (npm run schemas). Run after `npm run build`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOCUMENT_SCHEMAS, documentJsonSchema } from '../dist/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'schemas');
fs.mkdirSync(dir, { recursive: true });
for (const name of DOCUMENT_SCHEMAS.keys()) {
  fs.writeFileSync(path.join(dir, `${name}.schema.json`), `${JSON.stringify(documentJsonSchema(name), null, 2)}\n`);
}
console.log(`wrote ${DOCUMENT_SCHEMAS.size} schemas to ${path.relative(process.cwd(), dir) || '.'}`);
