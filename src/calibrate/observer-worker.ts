/**
 * Worker-thread entry of the observer pool: owns the observers of a fixed set of tensors, folds in the
 * batches the main thread transfers to it (zero-copy), and returns each tensor's table entry at the end.
 */
import { parentPort } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './observer-protocol.js';
import { makeObserver } from './observers/make.js';
import type { Observer } from './observers/observer.js';

const port = parentPort;
if (!port) throw new Error('observer-worker.js runs only as a worker thread');
let observers: Observer[] = [];
let fed = new Uint8Array(0);
const reply = (m: FromWorker) => port.postMessage(m);

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'init') {
      observers = m.names.map(() => makeObserver(m.method, m.settings));
      fed = new Uint8Array(observers.length);
    }
    else if (m.type === 'batch') {
      for (const it of m.items) {
        const obs = observers[it.slot];
        fed[it.slot] = 1;
        obs.update(it.x, it.stats);
      }
      // Hand the buffers back: the main thread's collector frees them as it does its own garbage
      // (this thread allocates almost nothing, so it would collect them late and memory would pile up).
      const buffers = [...new Set(m.items.map((it) => it.x.buffer as ArrayBuffer))];
      port.postMessage({ type: 'ack', seq: m.seq, buffers } satisfies FromWorker, buffers);
    } else reply({ type: 'results', results: observers.map((o, i) => (fed[i] ? o.result() : undefined)) });
  } catch (err) {
    reply({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
});
