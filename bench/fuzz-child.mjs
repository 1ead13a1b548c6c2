// One fuzz worker process: receives {file, id, steps} over IPC, runs the mutant through
// load → inspect → quantize (dynamic int8, weight-only int4, or static on 2 random samples), and replies
// with the outcome. A QtoolError other than InternalError is an expected refusal; anything else
// (a TypeError, a RangeError, an InternalError, a multi-line message) is a crash.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QtoolError, inspectModel, loadModel, quantize } from '../dist/index.js';

function classify(err) {
  if (err instanceof QtoolError) {
    const oneLine = !String(err.message).includes('\n');
    const crash = err.exitCode === 1 || err.code === 'E_INTERNAL' || !oneLine;
    return { outcome: crash ? 'crash' : 'refused', code: err.code, exitCode: err.exitCode, message: String(err.message).slice(0, 300) };
  }
  return { outcome: 'crash', code: err?.constructor?.name ?? typeof err, exitCode: 1, message: String(err?.message ?? err).slice(0, 300), stack: String(err?.stack ?? '').split('\n').slice(0, 6).join('\n') };
}

process.on('message', async (job) => {
  const { file, id, mode } = job;
  const out = path.join(path.dirname(file), `out-${id}.onnx`);
  let stage = 'load';
  let result;
  try {
    const model = loadModel(file);
    stage = 'inspect';
    inspectModel(model);
    stage = 'quantize';
    const opts = mode === 'int4' ? { bits: 4, output: out, force: true } : mode === 'static' ? { data: 'random', samples: 2, fidelitySamples: 0, output: out, force: true } : { mode: 'dynamic', output: out, force: true };
    await quantize(model, opts);
    result = { outcome: 'ok', stage };
  } catch (err) {
    result = { ...classify(err), stage };
  } finally {
    for (const f of fs.readdirSync(path.dirname(file))) if (f.startsWith(`out-${id}`)) fs.rmSync(path.join(path.dirname(file), f), { force: true });
  }
  process.send({ id, ...result, rssBytes: process.memoryUsage().rss });
});
process.on('unhandledRejection', (err) => {
  process.send({ id: -1, outcome: 'crash', code: 'unhandledRejection', exitCode: 1, message: String(err?.message ?? err) });
});

process.send({ ready: true });
