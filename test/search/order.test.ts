import { describe, expect, it } from 'vitest';
import { orderLayers } from '../../src/search/order.js';
import { fakeReport } from './fake-report.js';

/** Layers with given Ω (at 8 bits) and measured single-layer losses (at 8 bits). */
function layers(omega: number[], measured: (number | undefined)[], loo?: number[]) {
  const r = fakeReport(omega);
  return r.layers.map((l, i) => ({
    ...l,
    bits: l.bits.map((b) => (b.bits === 8 ? { ...b, omega: omega[i], measuredLoss: measured[i] as number } : b)),
    leaveOneOut: loo ? { loss: 0, recovered: loo[i] } : null,
  }));
}

describe('orderLayers: measured loss first, Ω and leave-one-out only break ties', () => {
  it('puts the one layer that measured harmful first even when Ω ranks it last', () => {
    // layer2 has the smallest Ω by far, but quantizing it alone costs the most.
    const order = orderLayers(layers([10, 9, 0.001, 8], [1e-4, 2e-4, 0.5, 1e-4]), 'float', 8);
    expect(order.map((o) => o.id)).toEqual(['layer2', 'layer1', 'layer0', 'layer3']);
    expect(order[0].score).toBeGreaterThan(0.99);
  });

  it('breaks ties (equal or no measurable harm) by Ω, then by leave-one-out, then report order', () => {
    // layer0 and layer3 measured equal; layer1 and layer2 measured no harm (≤ 0).
    expect(orderLayers(layers([1, 5, 7, 3], [0.2, -1e-6, 0, 0.2]), 'float', 8).map((o) => o.id)).toEqual(['layer3', 'layer0', 'layer2', 'layer1']);
    // 'measured': Ω is not a term; leave-one-out breaks the tie.
    expect(orderLayers(layers([1, 5, 7, 3], [0.2, 0, 0, 0.2], [4, 0, 1, 2]), 'float', 8, 'measured').map((o) => o.id)).toEqual(['layer0', 'layer3', 'layer2', 'layer1']);
    expect(orderLayers(layers([1, 5, 7, 3], [0, 0, 0, 0]), 'float', 8, 'measured').map((o) => o.id)).toEqual(['layer0', 'layer1', 'layer2', 'layer3']);
  });

  it('falls back to Ω when the report has no measured losses', () => {
    expect(orderLayers(layers([1, 5, 7, 3], [undefined, undefined, undefined, undefined]), 'float', 8).map((o) => o.id)).toEqual(['layer2', 'layer1', 'layer3', 'layer0']);
  });
});
