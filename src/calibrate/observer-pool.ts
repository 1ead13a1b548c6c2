/**
 * Observers on worker threads. onnxruntime-node runs a session on the JS thread, so binning the
 * fetched activations there serialises the two; the pool moves each tensor's observer to one of W
 * workers (tensor i → worker i mod W, fixed) and transfers every batch's buffers to them (no copy),
 * so histograms of batch k are built while onnxruntime computes batch k+1. At most `inFlight` batches
 * per worker are outstanding (post() waits), so memory does not grow with the sample count. The
 * histograms are exact grid counts, so the table is the same as with in-thread observers.
 */
import { Worker } from 'node:worker_threads';
import type { CalibrationMethod, TensorRange } from '../documents/index.js';
import { InternalError } from '../errors.js';
import { compiledScript } from '../files.js';
import type { BatchItem, FromWorker, ToWorker } from './observer-protocol.js';
import type { ObserverSettings } from './observers/make.js';
import type { CleanStats } from './observers/observer.js';

interface PoolWorker {
  worker: Worker;
  names: string[];
  /** Resolvers of outstanding batches, by sequence number. */
  waiting: Map<number, () => void>;
  onResults?: (r: (TensorRange | undefined)[]) => void;
  failure?: Error;
  fail: (e: Error) => void;
}

export interface ObservedBatchItem {
  name: string;
  x: Float32Array;
  stats?: CleanStats;
}

export class ObserverPool {
  private readonly workers: PoolWorker[] = [];
  private readonly slotOf = new Map<string, [number, number]>();
  private seq = 0;
  /** One promise per posted batch, settled when every worker has acknowledged it. */
  private pending: Promise<void>[] = [];

  private constructor(
    names: readonly string[],
    count: number,
    method: CalibrationMethod,
    settings: ObserverSettings,
    private readonly inFlight: number,
  ) {
    const script = compiledScript(import.meta.url, 'observer-worker.js');
    for (let w = 0; w < count; w++) {
      const own = names.filter((_, i) => i % count === w);
      own.forEach((n, slot) => this.slotOf.set(n, [w, slot]));
      const worker = new Worker(script);
      const pw: PoolWorker = {
        worker,
        names: own,
        waiting: new Map(),
        fail: (e) => {
          pw.failure ??= e;
          for (const r of pw.waiting.values()) r();
          pw.waiting.clear();
          pw.onResults?.([]);
        },
      };
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ack') {
          pw.waiting.get(m.seq)?.();
          pw.waiting.delete(m.seq);
        } else if (m.type === 'results') pw.onResults?.(m.results);
        else pw.fail(new InternalError(`calibration observer thread failed: ${m.message}`));
      });
      worker.on('error', (e) => pw.fail(new InternalError(`calibration observer thread failed: ${e.message}`, { cause: e })));
      worker.on('exit', () => pw.fail(new InternalError('calibration observer thread exited early')));
      const init: ToWorker = { type: 'init', method, settings, names: own };
      worker.postMessage(init);
      this.workers.push(pw);
    }
  }

  /** A pool of `count` workers (≥ 1) sharing `names` round-robin. */
  static open(names: readonly string[], count: number, method: CalibrationMethod, settings: ObserverSettings, inFlight = 2): ObserverPool {
    return new ObserverPool(names, count, method, settings, inFlight);
  }

  private check(): void {
    for (const w of this.workers) if (w.failure) throw w.failure;
  }

  /**
   * Hand one batch to the workers. The items' buffers are transferred: the caller must not touch them
   * again (pass copies of arrays it still needs, such as views into the dataset's buffers).
   */
  async post(items: readonly ObservedBatchItem[]): Promise<void> {
    this.check();
    const seq = this.seq++;
    const perWorker: BatchItem[][] = this.workers.map(() => []);
    const transfers: ArrayBuffer[][] = this.workers.map(() => []);
    const moved = new Set<ArrayBufferLike>();
    for (const it of items) {
      const at = this.slotOf.get(it.name);
      if (!at) continue;
      let x = it.x;
      // Transfer whole buffers once; a view into a larger or already moved buffer goes as a copy.
      if (!(x.buffer instanceof ArrayBuffer) || x.byteOffset !== 0 || x.byteLength !== x.buffer.byteLength || moved.has(x.buffer)) x = x.slice();
      moved.add(x.buffer);
      transfers[at[0]].push(x.buffer as ArrayBuffer);
      perWorker[at[0]].push({ slot: at[1], x, stats: it.stats });
    }
    const waits: Promise<void>[] = [];
    this.workers.forEach((w, i) => {
      waits.push(new Promise<void>((resolve) => w.waiting.set(seq, resolve)));
      const msg: ToWorker = { type: 'batch', seq, items: perWorker[i] };
      w.worker.postMessage(msg, transfers[i]);
    });
    // Back-pressure: wait for the batch posted `inFlight` batches ago.
    this.pending.push(Promise.all(waits).then(() => undefined));
    while (this.pending.length > this.inFlight) await this.pending.shift();
    this.check();
  }

  /** Wait for every batch, collect each tensor's entry (undefined: never fed), and stop the workers. */
  async finish(): Promise<Map<string, TensorRange>> {
    try {
      await Promise.all(this.pending);
      this.check();
      const parts = await Promise.all(
        this.workers.map(
          (w) =>
            new Promise<(TensorRange | undefined)[]>((resolve) => {
              w.onResults = resolve;
              const msg: ToWorker = { type: 'finish' };
              w.worker.postMessage(msg);
            }),
        ),
      );
      this.check();
      const out = new Map<string, TensorRange>();
      this.workers.forEach((w, i) => w.names.forEach((n, slot) => parts[i][slot] && out.set(n, parts[i][slot]!)));
      return out;
    } finally {
      await this.close();
    }
  }

  /** Stop the workers (idempotent). */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        w.failure ??= new InternalError('calibration observer pool closed');
        w.worker.removeAllListeners('exit');
        await w.worker.terminate();
      }),
    );
  }
}
