#!/usr/bin/env node
/**
 * npm run bench — run the benchmark scripts in bench/ one after another and collect their output.
 *
 *   node bench/run.mjs [--io] [--only name,name]
 *
 * Runs calibrate.mjs, quantize.mjs, speed.mjs, int8-latency.mjs, latsearch.mjs, sensitivity.mjs, images.mjs (those that exist), and io.mjs only with --io (it
 * writes >2 GiB of temp files). Each script's stdout is printed under a heading; a script's failure is
 * reported and the others still run; exit 1 if any failed. Needs a build (npm run build).
 * Each script's output replaces its own section of bench/RESULTS.md (with the machine and command);
 * io.mjs maintains its section itself.
 */
import { execSync, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;
const scripts = ['calibrate', 'quantize', 'speed', 'int8-latency', 'latsearch', 'sensitivity', 'images', ...(args.includes('--io') ? ['io'] : [])]
  .filter((name) => !only || only.includes(name))
  .filter((name) => fs.existsSync(path.join(HERE, `${name}.mjs`)));

if (!fs.existsSync(path.resolve(HERE, '../dist/index.js'))) {
  process.stderr.write('bench: dist/ is missing; run npm run build first\n');
  process.exit(1);
}

const results = [];
for (const name of scripts) {
  process.stderr.write(`bench: running ${name}.mjs …\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(HERE, `${name}.mjs`)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const seconds = (Date.now() - t0) / 1000;
  results.push({ name, ok: r.status === 0, seconds });
  process.stdout.write(`\n## ${name}.mjs (${seconds.toFixed(1)} s${r.status === 0 ? '' : `, FAILED with exit ${r.status ?? r.signal}`})\n\n${r.stdout ?? ''}`);
  if (r.status === 0 && name !== 'io') writeSection(name, r.stdout ?? '', seconds);
}

/** Replace (or append) the `<!-- bench:name -->` section of bench/RESULTS.md. */
function writeSection(name, body, seconds) {
  const file = path.join(HERE, 'RESULTS.md');
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n';
  let load = '';
  try {
    load = os.loadavg()[0].toFixed(1);
  } catch {}
  let cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  try {
    cpu = execSync("grep -m1 'model name' /proc/cpuinfo", { encoding: 'utf8' }).split(':')[1].trim();
  } catch {}
  const machine = `${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
  const section = [
    `<!-- bench:${name} -->`,
    `## ${name} (\`node bench/${name}.mjs\`, via \`npm run bench\`)`,
    '',
    `Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}. Took ${seconds.toFixed(0)} s; load average at the end ${load}.`,
    '',
    body.trim(),
    `<!-- /bench:${name} -->`,
  ].join('\n');
  const re = new RegExp(`<!-- bench:${name} -->[\\s\\S]*?<!-- /bench:${name} -->`);
  const next = re.test(old) ? old.replace(re, section) : `${old.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
}

process.stdout.write(`\n## summary\n\n| script | result | seconds |\n| --- | --- | ---: |\n${results.map((r) => `| ${r.name}.mjs | ${r.ok ? 'ok' : 'FAILED'} | ${r.seconds.toFixed(1)} |`).join('\n')}\n`);
if (scripts.length === 0) process.stderr.write('bench: no benchmark scripts found (calibrate.mjs, quantize.mjs, sensitivity.mjs; io.mjs with --io)\n');
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
