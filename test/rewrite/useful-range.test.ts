import { describe, expect, test } from 'vitest';
import { floatTensorProto, GraphIndex, makeGraph, makeNode, makeValueInfo, type NodeProto } from '../../src/onnx/index.js';
import { usefulInterval } from '../../src/rewrite/useful-range.js';

const k = (name: string, v: number) => floatTensorProto(name, [], Float32Array.of(v));

/** x → nodes → y; returns the interval of `tensor` in the main graph. */
function interval(nodes: NodeProto[], tensor = 'x', outputs = ['y']): readonly [number, number] {
  const g = makeGraph({
    name: 'g',
    nodes,
    inputs: [makeValueInfo('x', 'float32', [1, 4])],
    outputs: outputs.map((o) => makeValueInfo(o, 'float32')),
    initializers: [k('three', 3), k('zero', 0), k('six', 6), k('two', 2), k('half', 0.5), k('neg', -2)],
  });
  const index = new GraphIndex(g, 'g.onnx');
  return usefulInterval(index, index.main, tensor);
}

describe('usefulInterval: where every consumer saturates', () => {
  test('Relu and Clip', () => {
    expect(interval([makeNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] })])).toEqual([0, Infinity]);
    expect(interval([makeNode({ opType: 'Clip', inputs: ['x', 'zero', 'six'], outputs: ['y'] })])).toEqual([0, 6]);
    expect(interval([makeNode({ opType: 'Clip', inputs: ['x'], outputs: ['y'], attrs: { min: -1, max: 1 } })])).toEqual([-1, 1]);
  });
  test('hard-swish x·Clip(x+3, 0, 6)/6 behind a scalar affine 2x + 0.5: floor (-3 - 0.5) / 2', () => {
    const nodes = [
      makeNode({ opType: 'Mul', inputs: ['two', 'x'], outputs: ['a'] }),
      makeNode({ opType: 'Add', inputs: ['a', 'half'], outputs: ['b'] }),
      makeNode({ opType: 'Add', inputs: ['b', 'three'], outputs: ['c'] }),
      makeNode({ opType: 'Clip', inputs: ['c', 'zero', 'six'], outputs: ['d'] }),
      makeNode({ opType: 'Mul', inputs: ['b', 'd'], outputs: ['e'] }),
      makeNode({ opType: 'Div', inputs: ['e', 'six'], outputs: ['y'] }),
    ];
    expect(interval(nodes)).toEqual([-1.75, Infinity]);
  });
  test('x·HardSigmoid(x) and HardSwish: floor -3; a negative scale flips the interval', () => {
    const hs = [
      makeNode({ opType: 'HardSigmoid', inputs: ['x'], outputs: ['s'], attrs: { alpha: 1 / 6, beta: 0.5 } }),
      makeNode({ opType: 'Mul', inputs: ['x', 's'], outputs: ['y'] }),
    ];
    expect(interval(hs)[0]).toBeCloseTo(-3, 5);
    expect(interval(hs)[1]).toBe(Infinity);
    expect(interval([makeNode({ opType: 'Mul', inputs: ['x', 'neg'], outputs: ['a'] }), makeNode({ opType: 'HardSwish', inputs: ['a'], outputs: ['y'] })])).toEqual([-Infinity, 1.5]);
  });
  test('unbounded: a non-saturating consumer, a graph output, a runtime multiplier', () => {
    expect(interval([makeNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] }), makeNode({ opType: 'Sigmoid', inputs: ['x'], outputs: ['z'] })], 'x', ['y', 'z'])).toEqual([-Infinity, Infinity]);
    expect(interval([makeNode({ opType: 'Relu', inputs: ['x'], outputs: ['a'] }), makeNode({ opType: 'Identity', inputs: ['x'], outputs: ['y'] })])).toEqual([-Infinity, Infinity]);
    expect(interval([makeNode({ opType: 'Mul', inputs: ['x', 'x'], outputs: ['a'] }), makeNode({ opType: 'Relu', inputs: ['a'], outputs: ['y'] })])).toEqual([-Infinity, Infinity]);
    expect(interval([makeNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] })], 'y')).toEqual([-Infinity, Infinity]);
  });
  test('through value-moving ops: Reshape → Relu', () => {
    const g = [makeNode({ opType: 'Transpose', inputs: ['x'], outputs: ['t'] }), makeNode({ opType: 'Relu', inputs: ['t'], outputs: ['y'] })];
    expect(interval(g)).toEqual([0, Infinity]);
  });
});
