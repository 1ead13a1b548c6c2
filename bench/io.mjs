#!/usr/bin/env node
/**
 * npm run bench:io — model load + save through loadModel/saveModel on generated models
 * (a ≥500 MB inline model and a >2 GiB model stored with external data), against plain
 * fs reads/writes of the same bytes. Every measurement runs in its own child process so
 * peak RSS (VmHWM, see peakRssBytes) belongs to that case alone.
 *
 *   node bench/io.mjs [--runs 5] [--inline-layers 8] [--external-layers 36] [--width 4096] [--keep]
 *
 * Needs a build (npm run build). Writes a Markdown table to stdout and to bench/RESULTS.md
 * under "## Model I/O (npm run bench:io)". Temp files go under /tmp and are deleted at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, '../dist');
const CHUNK = 64 * 1024 * 1024;

// ---------------------------------------------------------------- child tasks

/** Each task runs alone in a fresh process; returns { ms, ... }. */
const CHILD_TASKS = {
  /** Nothing: the RSS of a bare node process that loaded qtool. */
  async idle() {
    await import(path.join(DIST, 'onnx/index.js'));
    return { ms: 0 };
  },
  /** Build a deep MLP of width x width Gemm weights and save it. */
  async generate({ file, layers, width, externalData }) {
    const { buildMlpModel } = await import(path.join(DIST, 'fixtures/index.js'));
    const { saveModel } = await import(path.join(DIST, 'onnx/index.js'));
    const t0 = performance.now();
    const model = buildMlpModel({ inputSize: width, hidden: Array(layers - 1).fill(width), classes: width, seed: 7, init: 'uniform', name: 'bench_mlp' });
    const r = saveModel(model, file, { externalData });
    return { ms: performance.now() - t0, ...r };
  },
  /** Baseline: readFileSync + writeFileSync of the same bytes. */
  async plainReadWrite({ src, dst, fsync }) {
    const t0 = performance.now();
    const buf = fs.readFileSync(src);
    if (fsync) {
      const fd = fs.openSync(dst, 'w');
      fs.writeFileSync(fd, buf);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    } else {
      fs.writeFileSync(dst, buf);
    }
    return { ms: performance.now() - t0 };
  },
  /** Baseline for external data: copy each file with chunked reads and writes. */
  async chunkedCopy({ pairs, fsync }) {
    const t0 = performance.now();
    const buf = Buffer.allocUnsafe(CHUNK);
    for (const [src, dst] of pairs) {
      const from = fs.openSync(src, 'r');
      const to = fs.openSync(dst, 'w');
      for (;;) {
        const n = fs.readSync(from, buf, 0, CHUNK, null);
        if (n === 0) break;
        let off = 0;
        while (off < n) off += fs.writeSync(to, buf, off, n - off);
      }
      if (fsync) fs.fsyncSync(to);
      fs.closeSync(from);
      fs.closeSync(to);
    }
    return { ms: performance.now() - t0 };
  },
  /** qtool: loadModel + saveModel. */
  async qtool({ src, dst, externalData }) {
    const { loadModel, saveModel } = await import(path.join(DIST, 'onnx/index.js'));
    const t0 = performance.now();
    const model = loadModel(src);
    const t1 = performance.now();
    saveModel(model, dst, externalData === undefined ? {} : { externalData });
    const t2 = performance.now();
    return { ms: t2 - t0, loadMs: t1 - t0, saveMs: t2 - t1 };
  },
};

function child(task, args) {
  // Start every measurement with no dirty pages left by the previous one.
  spawnSync('sync');
  const r = spawnSync(process.execPath, ['--max-old-space-size=8192', fileURLToPath(import.meta.url), '--child', task, JSON.stringify(args)], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`child ${task} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------- orchestration

function parseArgs() {
  const a = process.argv.slice(2);
  const get = (name, dflt) => {
    const i = a.indexOf(name);
    return i >= 0 ? Number(a[i + 1]) : dflt;
  };
  return {
    runs: get('--runs', 5),
    inlineLayers: get('--inline-layers', 8),
    externalLayers: get('--external-layers', 36),
    width: get('--width', 4096),
    keep: a.includes('--keep'),
  };
}

function filesEqual(a, b) {
  const sa = fs.statSync(a).size;
  if (sa !== fs.statSync(b).size) return false;
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  const ba = Buffer.allocUnsafe(CHUNK);
  const bb = Buffer.allocUnsafe(CHUNK);
  try {
    for (let off = 0; off < sa; off += CHUNK) {
      const n = fs.readSync(fa, ba, 0, CHUNK, off);
      const m = fs.readSync(fb, bb, 0, CHUNK, off);
      if (n !== m || ba.compare(bb, 0, m, 0, n) !== 0) return false;
    }
    return true;
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 1e6).toFixed(0);
const gib = (b) => (b / 2 ** 30).toFixed(2);

async function main() {
  const opts = parseArgs();
  opts.loadAtStart = os.loadavg()[0];
  if (!fs.existsSync(path.join(DIST, 'fixtures/index.js'))) throw new Error('dist/ is missing: run npm run build first');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-io-'));
  const log = (s) => process.stderr.write(`${s}\n`);
  const rows = [];
  try {
    const idle = child('idle', {});
    log(`idle node + qtool RSS: ${mb(idle.maxRssBytes)} MB`);

    // Inline model, ≥500 MB.
    const inDir = path.join(tmp, 'inline');
    const outDir = path.join(tmp, 'inline-out');
    fs.mkdirSync(inDir);
    fs.mkdirSync(outDir);
    const inline = path.join(inDir, 'model.onnx');
    log(`generating ${opts.inlineLayers} x ${opts.width}² Gemm inline model…`);
    const g1 = child('generate', { file: inline, layers: opts.inlineLayers, width: opts.width, externalData: false });
    const inlineBytes = fs.statSync(inline).size;
    log(`  ${mb(inlineBytes)} MB in ${(g1.ms / 1000).toFixed(1)} s`);
    rows.push(
      measure(opts, {
        label: `inline model, ${mb(inlineBytes)} MB`,
        bytes: inlineBytes,
        baselineLabel: 'readFileSync + writeFileSync',
        baseline: (fsync) => child('plainReadWrite', { src: inline, dst: path.join(outDir, 'plain.onnx'), fsync }),
        qtool: () => child('qtool', { src: inline, dst: path.join(outDir, 'model.onnx') }),
        verify: () => filesEqual(inline, path.join(outDir, 'model.onnx')),
        cleanup: () => fs.rmSync(outDir, { recursive: true, force: true }) || fs.mkdirSync(outDir),
        log,
      }),
    );
    fs.rmSync(inDir, { recursive: true, force: true });

    // External-data model, > 2 GiB.
    const exDir = path.join(tmp, 'external');
    const exOut = path.join(tmp, 'external-out');
    fs.mkdirSync(exDir);
    fs.mkdirSync(exOut);
    const ex = path.join(exDir, 'model.onnx');
    log(`generating ${opts.externalLayers} x ${opts.width}² Gemm external-data model…`);
    const g2 = child('generate', { file: ex, layers: opts.externalLayers, width: opts.width, externalData: true });
    const exFiles = [ex, `${ex}.data`];
    const exBytes = exFiles.reduce((s, f) => s + fs.statSync(f).size, 0);
    log(`  ${gib(exBytes)} GiB in ${(g2.ms / 1000).toFixed(1)} s`);
    const outFiles = exFiles.map((f) => path.join(exOut, path.basename(f)));
    const exCase = (label, externalData) =>
      measure(opts, {
        label,
        bytes: exBytes,
        baselineLabel: 'chunked copy (64 MiB)',
        baseline: (fsync) => child('chunkedCopy', { pairs: exFiles.map((f) => [f, path.join(exOut, `plain-${path.basename(f)}`)]), fsync }),
        qtool: () => child('qtool', { src: ex, dst: outFiles[0], externalData }),
        verify: () => exFiles.every((f, i) => filesEqual(f, outFiles[i])),
        cleanup: () => fs.rmSync(exOut, { recursive: true, force: true }) || fs.mkdirSync(exOut),
        log,
      });
    rows.push(exCase(`external data, ${gib(exBytes)} GiB, data re-written (externalData: true, the default above 2 GiB)`, true));
    rows.push(exCase(`external data, ${gib(exBytes)} GiB, data files copied (externalData: false)`, false));

    const table = renderTable(rows, idle);
    process.stdout.write(`${table}\n`);
    writeResults(table, opts);
  } finally {
    if (!opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function measure(opts, c) {
  const base = [];
  const baseSync = [];
  const q = [];
  let identical = true;
  for (let r = 0; r < opts.runs; r++) {
    base.push(c.baseline(false));
    c.cleanup();
    baseSync.push(c.baseline(true));
    c.cleanup();
    const run = c.qtool();
    q.push(run);
    identical &&= c.verify();
    c.cleanup();
    c.log(`  ${c.label} run ${r + 1}: plain ${base.at(-1).ms.toFixed(0)} ms, plain+fsync ${baseSync.at(-1).ms.toFixed(0)} ms, qtool ${run.ms.toFixed(0)} ms (load ${run.loadMs.toFixed(0)}, save ${run.saveMs.toFixed(0)}), RSS ${mb(run.maxRssBytes)} MB`);
  }
  const m = (xs, k) => median(xs.map((x) => x[k]));
  return {
    label: c.label,
    bytes: c.bytes,
    baselineLabel: c.baselineLabel,
    baseMs: m(base, 'ms'),
    baseSyncMs: m(baseSync, 'ms'),
    baseRss: m(base, 'maxRssBytes'),
    qMs: m(q, 'ms'),
    loadMs: m(q, 'loadMs'),
    saveMs: m(q, 'saveMs'),
    qRss: m(q, 'maxRssBytes'),
    spread: (xs) => `${Math.min(...xs.map((x) => x.ms)).toFixed(0)}–${Math.max(...xs.map((x) => x.ms)).toFixed(0)} ms`,
    runs: { base, baseSync, q },
    identical,
  };
}

function renderTable(rows, idle) {
  const lines = [
    '| case | baseline | baseline ms (+fsync) | qtool load + save ms (load / save) | time vs baseline (vs +fsync) | qtool peak RSS | RSS / model size | baseline peak RSS | saved bytes identical |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.baselineLabel} | ${r.baseMs.toFixed(0)} (${r.baseSyncMs.toFixed(0)}) | ${r.qMs.toFixed(0)} (${r.loadMs.toFixed(0)} / ${r.saveMs.toFixed(0)}) | ` +
        `${(r.qMs / r.baseMs).toFixed(2)}x (${(r.qMs / r.baseSyncMs).toFixed(2)}x) | ${mb(r.qRss)} MB | ${(r.qRss / r.bytes).toFixed(2)}x | ${mb(r.baseRss)} MB | ${r.identical ? 'yes' : '**NO**'} |`,
    );
  }
  lines.push('', `Idle \`node\` with qtool imported: ${mb(idle.maxRssBytes)} MB RSS (included in the peaks above). Medians of the runs; page cache warm. Spread over the runs (min–max):`, '');
  for (const r of rows) {
    lines.push(`- ${r.label}: baseline ${r.spread(r.runs.base)}, baseline + fsync ${r.spread(r.runs.baseSync)}, qtool ${r.spread(r.runs.q)}`);
  }
  return lines.join('\n');
}

function writeResults(table, opts) {
  const file = path.join(HERE, 'RESULTS.md');
  const sh = (cmd) => {
    try {
      return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  };
  const mem = sh("free -h | awk '/^Mem:/ {print $2}'");
  const cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim();
  const args = process.argv.slice(2).join(' ');
  const section = [
    '## Model I/O (npm run bench:io)',
    '',
    `Machine: ${sh('nproc')} cores (${cpu}), ${mem} RAM, Node ${process.version}, ${os.platform()} ${os.release()}. ` +
      `Command: \`npm run bench:io${args ? ` -- ${args}` : ''}\` (${opts.runs} runs, ${opts.width}x${opts.width} float32 Gemm weights: ` +
      `${opts.inlineLayers} layers inline, ${opts.externalLayers} layers with external data). Date: ${new Date().toISOString().slice(0, 10)}. ` +
      `Load average (1 min) at start ${opts.loadAtStart.toFixed(1)}, at end ${os.loadavg()[0].toFixed(1)} (other jobs share the disk and CPUs).`,
    '',
    'Each case runs in its own child process. "baseline" reads and writes the same bytes with plain `fs`; ' +
      'qtool writes atomically (temp file, fsync, rename), so the baseline is also shown with an fsync. Targets: time ≤ 2x baseline, peak RSS ≤ 1.5x model size.',
    '',
    table,
    '',
  ].join('\n');
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n\n';
  const start = text.indexOf('## Model I/O (npm run bench:io)');
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + 1);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : '');
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  fs.writeFileSync(file, text);
}

if (process.argv[2] === '--child') {
  const out = await CHILD_TASKS[process.argv[3]](JSON.parse(process.argv[4]));
  const { peakRssBytes } = await import(path.join(DIST, 'bench/peak-rss.js'));
  process.stdout.write(JSON.stringify({ ...out, maxRssBytes: peakRssBytes() }));
} else {
  await main();
}
