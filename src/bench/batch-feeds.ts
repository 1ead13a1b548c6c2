import type { Feeds } from '../runtime/index.js';
import { makeTensor, numElements, type Tensor } from '../tensor/index.js';

/**
 * A batch of exactly `batchSize` rows made from `sample` (each tensor's leading dim = rows),
 * repeating rows when the data holds fewer samples than the batch.
 */
export function tileBatch(sample: Feeds, batchSize: number): Feeds {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(sample)) {
    const rows = t.dims[0] ?? 1;
    if (rows === batchSize || t.dims.length === 0 || rows === 0) {
      out[name] = t;
      continue;
    }
    const rowLen = numElements(t.dims.slice(1));
    const dst = makeTensor(t.dtype, [batchSize, ...t.dims.slice(1)]);
    const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<number> };
    const dstData = dst.data as unknown as { set(a: ArrayLike<number>, off: number): void };
    for (let r = 0; r < batchSize; r++) dstData.set(src.subarray((r % rows) * rowLen, ((r % rows) + 1) * rowLen), r * rowLen);
    out[name] = dst;
  }
  return out;
}
