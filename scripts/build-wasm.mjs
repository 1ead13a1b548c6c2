#!/usr/bin/env node
// Build the WebAssembly SIMD calibration kernel (assembly/calibrate.ts, AssemblyScript) into
// dist/calibrate/calibrate.wasm. Part of `npm run build` (and so of `npm ci` via prepare, and `npm test`).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(ROOT, 'dist/calibrate/calibrate.wasm');
fs.mkdirSync(path.dirname(out), { recursive: true });
const asc = path.join(ROOT, 'node_modules/assemblyscript/bin/asc.js');
if (!fs.existsSync(asc)) {
  // An install without devDependencies (a consumer's `npm install qtool` ships the built .wasm in dist/).
  if (fs.existsSync(out)) process.exit(0);
  console.error('build-wasm: assemblyscript is not installed (npm ci installs it); calibration will use the JavaScript loops');
  process.exit(0);
}
const r = spawnSync(process.execPath, [asc, path.join(ROOT, 'assembly/calibrate.ts'), '-O3', '--enable', 'simd', '--runtime', 'stub', '--noAssert', '--importMemory', '--initialMemory', '1', '-o', out], { stdio: 'inherit' });
process.exit(r.status ?? 1);
