// Ctrl-C latency on a large model: generate an MLP of ~400 MB (not committed), start
// `qtool quantize` / `qtool calibrate`, send SIGINT after various delays, and measure how long the
// process takes to exit, its exit code, and what it leaves behind (output, .qtool-tmp-*, qtool-*-<pid>-*).
// Usage: npm run build && node bench/interrupt.mjs [--mb 400] [--delays 0.5,1,2,4,8]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, makeGraph, makeModel, makeNode, makeValueInfo, saveModel, writeNpy, makeTensor } from '../dist/index.js';
import { floatTensorProto } from '../dist/onnx/index.js';
import { inMemoryModel } from '../dist/fixtures/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const MB = Number(arg('mb', 400));
const DELAYS = arg('delays', '0.5,1,2,4,8').split(',').map(Number);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-bench-int-'));
const WIDTH = 2048;
const layers = Math.max(1, Math.round((MB * 1024 * 1024) / (WIDTH * WIDTH * 4)));
const rng = new Rng(1);
const inits = [];
const nodes = [];
let prev = 'x';
for (let i = 0; i < layers; i++) {
  inits.push(floatTensorProto(`w${i}`, [WIDTH, WIDTH], rng.fillUniform(new Float32Array(WIDTH * WIDTH), -0.02, 0.02)));
  nodes.push(makeNode({ opType: 'MatMul', inputs: [prev, `w${i}`], outputs: [`h${i}`], name: `mm${i}` }));
  nodes.push(makeNode({ opType: 'Relu', inputs: [`h${i}`], outputs: [`r${i}`], name: `relu${i}` }));
  prev = `r${i}`;
}
const graph = makeGraph({ name: 'big', nodes, inputs: [makeValueInfo('x', 'float32', ['batch', WIDTH])], outputs: [makeValueInfo(prev, 'float32', ['batch', WIDTH])], initializers: inits });
const modelFile = path.join(dir, 'big.onnx');
saveModel(inMemoryModel(makeModel({ graph, opsets: { '': 17 } }), 'big'), modelFile);
const dataFile = path.join(dir, 'x.npy');
writeNpy(dataFile, makeTensor('float32', [8, WIDTH], rng.fillNormal(new Float32Array(8 * WIDTH))));
const sizeMb = fs.statSync(modelFile).size / 2 ** 20;

function leftovers(pid) {
  const here = fs.readdirSync(dir).filter((f) => f.startsWith('.qtool-tmp-') || f.startsWith('out'));
  const tmp = fs.readdirSync(os.tmpdir()).filter((f) => new RegExp(`^qtool-[a-z]+-${pid}-`).test(f));
  return [...here, ...tmp];
}

function run(args, delayS) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/qtool'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let sentAt;
    const timer = delayS === undefined ? undefined : setTimeout(() => {
      sentAt = Date.now();
      child.kill('SIGINT');
    }, delayS * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const end = Date.now();
      resolve({ code: code ?? signal, totalMs: end - t0, afterSignalMs: sentAt ? end - sentAt : undefined, left: leftovers(child.pid), stderr: stderr.trim().split('\n').pop() });
    });
  });
}

const commands = {
  quantize: (o) => ['quantize', modelFile, '-o', o, '--force'],
  'quantize --external-data': (o) => ['quantize', modelFile, '-o', o, '--force', '--external-data'],
  calibrate: (o) => ['calibrate', modelFile, '--data', dataFile, '-o', o, '--force'],
};
console.log(`model: ${layers} MatMul ${WIDTH}x${WIDTH} layers, ${sizeMb.toFixed(0)} MB; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
for (const [name, argsFor] of Object.entries(commands)) {
  const out = path.join(dir, name.startsWith('calibrate') ? 'out.calib.json' : 'out.onnx');
  const full = await run(argsFor(out));
  for (const f of fs.readdirSync(dir)) if (f.startsWith('out')) fs.rmSync(path.join(dir, f));
  console.log(`\n${name}: uninterrupted ${full.totalMs} ms, exit ${full.code}`);
  console.log('| SIGINT after | exit | exit came after the signal | left behind |');
  console.log('|---|---|---|---|');
  for (const d of DELAYS) {
    if (d * 1000 >= full.totalMs) continue;
    const r = await run(argsFor(out), d);
    console.log(`| ${d} s | ${r.code} | ${r.afterSignalMs} ms | ${r.left.length ? r.left.join(' ') : 'nothing'} |`);
    for (const f of fs.readdirSync(dir)) if (f.startsWith('out') || f.startsWith('.qtool-tmp-')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
}
fs.rmSync(dir, { recursive: true, force: true });
