import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import {
  AttributeProtoSchema,
  AttributeType,
  GraphIndex,
  SparseTensorProtoSchema,
  constantNodeTensor,
  floatTensorProto,
  loadModel,
  makeGraph,
  makeNode,
  makeValueInfo,
  quantizableLayers,
  tensorFromProto,
  tensorToProto,
  walkGraphs,
  type GraphProto,
  type GraphScope,
  type Model,
} from '../../src/onnx/index.js';
import { Rng, makeTensor } from '../../src/tensor/index.js';
import { FMNIST, REAL_MODELS } from '../helpers/paths.js';

/** Every value a node reads is available before it runs: graph input, initializer, outer scope, or an earlier node. */
function expectTopological(index: GraphIndex, scope: GraphScope) {
  const seen = new Set<string>();
  for (const ref of scope.topoOrder) {
    for (const inp of ref.node.input) {
      if (!inp) continue;
      const local = scope.producers.get(inp);
      if (local) expect(seen.has(inp), `${inp} used before it is produced in ${scope.path}`).toBe(true);
      else expect(resolvable(index, inp, scope), `${inp} in ${scope.path}`).toBe(true);
    }
    for (const out of ref.node.output) seen.add(out);
  }
  expect(scope.topoOrder.length).toBe(scope.graph.node.length);
  expect(new Set(scope.topoOrder.map((r) => r.node)).size).toBe(scope.graph.node.length);
}

/** A value is resolvable from `scope` if some enclosing graph produces it, holds it as an initializer, or takes it as input. */
function resolvable(index: GraphIndex, value: string, scope: GraphScope): boolean {
  if (index.producer(value, scope) || index.isConstant(value, scope)) return true;
  for (let s: GraphScope | undefined = scope; s; s = s.parent) if (s.inputs.has(value)) return true;
  return false;
}

function shuffled(graph: GraphProto, seed: number): GraphProto {
  const p = new Rng(seed).permutation(graph.node.length);
  return { ...graph, node: [...p].map((i) => graph.node[i]) };
}

describe('GraphIndex on fmnist_cnn', () => {
  let model: Model;
  let index: GraphIndex;
  beforeAll(() => {
    model = loadModel(FMNIST.cnn);
    index = new GraphIndex(model.proto.graph!, model.file);
  });

  it('indexes producers and consumers of every value', () => {
    const g = model.proto.graph!;
    expect(index.scopes).toHaveLength(1);
    expect(index.main.path).toBe('main');
    for (const [pos, node] of g.node.entries()) {
      for (const out of node.output) {
        const p = index.producer(out)!;
        expect(p.node).toBe(node);
        expect(p.position).toBe(pos);
        expect(p.graph).toBe(index.main);
      }
      for (const inp of node.input) expect(index.consumers(inp).some((r) => r.node === node)).toBe(true);
    }
    expect(index.producer('input')).toBeUndefined();
    expect(index.consumers('input').length).toBeGreaterThan(0);
    expect(index.consumers('logits')).toEqual([]);
    expect(index.producer('logits')!.node.opType).toBe('Gemm');
    expect(index.scopeOf(g.node[0])).toBe(index.main);
    expect(index.valueInfo('input')?.name).toBe('input');
  });

  it('tells initializers (constants) from runtime values', () => {
    for (const t of model.proto.graph!.initializer) {
      expect(index.isConstant(t.name)).toBe(true);
      expect(index.constant(t.name)).toBe(t);
      expect(index.producer(t.name)).toBeUndefined();
    }
    expect(index.isConstant('input')).toBe(false);
    expect(index.isConstant(model.proto.graph!.node[0].output[0])).toBe(false);
    expect(index.constant('no-such-value')).toBeUndefined();
  });

  it('keeps the stored order when it is already topological', () => {
    expect(index.main.topoOrder.map((r) => r.position)).toEqual(model.proto.graph!.node.map((_, i) => i));
    expect([...index.allNodes()].map((r) => r.node)).toEqual(model.proto.graph!.node);
  });

  it('finds 8 quantizable layers: 7 Conv + 1 Gemm, with their weight shapes', () => {
    const layers = quantizableLayers(index);
    expect(layers.map((l) => l.opType)).toEqual([...Array(7).fill('Conv'), 'Gemm']);
    for (const l of layers) {
      const w = index.constant(l.weight)!;
      expect(l.weightDims).toEqual(w.dims.map(Number));
      expect(l.weightDims.length).toBe(l.opType === 'Conv' ? 4 : 2);
      expect(l.scope).toBe(index.main);
      expect(l.kind.family).toBe(l.opType === 'Conv' ? 'conv' : 'gemm');
    }
    expect(new Set(layers.map((l) => l.id)).size).toBe(8);
  });
});

describe('topological order', () => {
  it.each([
    ['fmnist_cnn', FMNIST.cnn],
    ['paddleRec', REAL_MODELS.paddleRec],
  ])('%s: a shuffled node order is sorted back into a valid order', (_name, file) => {
    const m = loadModel(file);
    for (const seed of [1, 2, 3]) {
      const index = new GraphIndex(shuffled(m.proto.graph!, seed));
      expectTopological(index, index.main);
    }
  });

  it('reports a cycle as ModelError E_GRAPH_CYCLE', () => {
    const g = makeGraph({
      name: 'cyc',
      nodes: [
        makeNode({ opType: 'Relu', inputs: ['b'], outputs: ['a'] }),
        makeNode({ opType: 'Relu', inputs: ['a'], outputs: ['b'] }),
      ],
      inputs: [],
      outputs: [makeValueInfo('b', 'float32', [1])],
    });
    try {
      new GraphIndex(g, 'cyc.onnx');
      throw new Error('expected a cycle error');
    } catch (err) {
      expect(err).toBeInstanceOf(ModelError);
      expect((err as ModelError).code).toBe('E_GRAPH_CYCLE');
      expect((err as ModelError).message).toMatch(/^cyc\.onnx: graph "main" has a cycle \(2 nodes/);
    }
  });

  it('orders a subgraph owner after the producers of the outer values its branches read', () => {
    const branch = (name: string) =>
      makeGraph({ name, nodes: [makeNode({ opType: 'Identity', inputs: ['late'], outputs: [`${name}_out`] })], inputs: [], outputs: [makeValueInfo(`${name}_out`, 'float32', [1])] });
    const g = makeGraph({
      name: 'outer',
      nodes: [
        makeNode({ opType: 'If', inputs: ['cond'], outputs: ['y'], name: 'if', attrs: { then_branch: branch('then'), else_branch: branch('else') } }),
        makeNode({ opType: 'Relu', inputs: ['x'], outputs: ['late'], name: 'relu' }),
      ],
      inputs: [makeValueInfo('cond', 'bool', []), makeValueInfo('x', 'float32', [1])],
      outputs: [makeValueInfo('y', 'float32', [1])],
    });
    const index = new GraphIndex(g);
    expect(index.main.topoOrder.map((r) => r.node.name)).toEqual(['relu', 'if']);
    expect(index.scopes.map((s) => s.path)).toEqual(['main', 'main/if/then_branch', 'main/if/else_branch']);
    const then = index.scopes[1];
    expect(then.owner!.node.name).toBe('if');
    expect(then.parent).toBe(index.main);
    expect(index.producer('late', then)!.node.name).toBe('relu');
    expect(index.consumers('late', then).map((r) => r.node.opType)).toEqual(['Identity']);
    expect(index.consumers('late')).toEqual([]); // consumers are per scope
  });
});

describe('constants from Constant nodes', () => {
  const sparse = create(SparseTensorProtoSchema, {
    values: floatTensorProto('sp', [2], [5, -1]),
    indices: tensorToProto('i', makeTensor('int64', [2], BigInt64Array.from([1n, 5n]))),
    dims: [2n, 3n],
  });
  const sparseCoords = create(SparseTensorProtoSchema, {
    values: floatTensorProto('spc', [2], [7, 8]),
    indices: tensorToProto('i', makeTensor('int64', [2, 2], BigInt64Array.from([0n, 2n, 1n, 0n]))),
    dims: [2n, 3n],
  });
  const forms: [string, Record<string, unknown>, string, number[], unknown[]][] = [
    ['value', { value: floatTensorProto('v', [2], [1.5, 2]) }, 'float32', [2], [1.5, 2]],
    ['value_float', { value_float: 0.25 }, 'float32', [], [0.25]],
    ['value_floats', { value_floats: { floats: [1, 2, 3] } }, 'float32', [3], [1, 2, 3]],
    ['value_int', { value_int: 7 }, 'int64', [], [7n]],
    ['value_ints', { value_ints: { ints: [4, -5] } }, 'int64', [2], [4n, -5n]],
  ];

  function graphWith(attrs: Record<string, unknown>, extra: object = {}) {
    const node = makeNode({ opType: 'Constant', inputs: [], outputs: ['c'], attrs: attrs as never });
    Object.assign(node, extra);
    return makeGraph({ name: 'g', nodes: [node, makeNode({ opType: 'Identity', inputs: ['c'], outputs: ['y'] })], inputs: [], outputs: [makeValueInfo('y', 'float32', null as never)] });
  }

  it.each(forms)('%s', (_form, attrs, dtype, dims, vals) => {
    const index = new GraphIndex(graphWith(attrs));
    expect(index.isConstant('c')).toBe(true);
    const t = index.constant('c')!;
    expect(index.constant('c')).toBe(t);
    const dense = tensorFromProto(t);
    expect(dense.dtype).toBe(dtype);
    expect(dense.dims).toEqual(dims);
    expect([...dense.data]).toEqual(vals);
    expect(index.isConstant('y')).toBe(false);
  });

  it('sparse_value with linear and coordinate indices is densified', () => {
    for (const [sp, want] of [
      [sparse, [0, 5, 0, 0, 0, -1]],
      [sparseCoords, [0, 0, 7, 8, 0, 0]],
    ] as const) {
      const node = makeNode({ opType: 'Constant', inputs: [], outputs: ['c'] });
      node.attribute.push(create(AttributeProtoSchema, { name: 'sparse_value', type: AttributeType.SPARSE_TENSOR, sparseTensor: sp }));
      const index = new GraphIndex(makeGraph({ name: 'g', nodes: [node], inputs: [], outputs: [] }));
      expect(index.isConstant('c')).toBe(true);
      const t = tensorFromProto(index.constant('c')!);
      expect(t.dims).toEqual([2, 3]);
      expect([...t.data]).toEqual(want);
    }
  });

  it('value_string and value_strings are constants of dtype string', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    const node = makeNode({ opType: 'Constant', inputs: [], outputs: ['s'], attrs: { value_string: 'abc' } });
    expect(constantNodeTensor(node)!.dataType).toBe(8);
    expect([...constantNodeTensor(node)!.stringData[0]]).toEqual([...enc('abc')]);
    const many = makeNode({ opType: 'Constant', inputs: [], outputs: ['s'], attrs: { value_strings: ['a', 'bc'] } });
    expect(constantNodeTensor(many)!.dims).toEqual([2n]);
    const index = new GraphIndex(makeGraph({ name: 'g', nodes: [many], inputs: [], outputs: [] }));
    expect(index.isConstant('s')).toBe(true);
  });

  it('sparse initializers are constants', () => {
    const g = makeGraph({ name: 'g', nodes: [makeNode({ opType: 'Identity', inputs: ['sp'], outputs: ['y'] })], inputs: [], outputs: [] });
    g.sparseInitializer.push(sparse);
    const index = new GraphIndex(g);
    expect(index.isConstant('sp')).toBe(true);
    expect([...tensorFromProto(index.constant('sp')!).data]).toEqual([0, 5, 0, 0, 0, -1]);
  });

  it('a Constant from another domain or without a value is not a constant', () => {
    const index = new GraphIndex(graphWith({ value_float: 1 }, { domain: 'com.example' }));
    expect(index.isConstant('c')).toBe(false);
    expect(new GraphIndex(graphWith({})).isConstant('c')).toBe(false);
    expect(new GraphIndex(graphWith({ value_float: 1 }, { domain: 'ai.onnx' })).isConstant('c')).toBe(true);
  });

  it('a graph input shadows nothing: an input with an initializer default is a constant, a plain input is not', () => {
    const g = makeGraph({
      name: 'g',
      nodes: [makeNode({ opType: 'Add', inputs: ['x', 'w'], outputs: ['y'] })],
      inputs: [makeValueInfo('x', 'float32', [1]), makeValueInfo('w', 'float32', [1])],
      outputs: [makeValueInfo('y', 'float32', [1])],
      initializers: [floatTensorProto('w', [1], [3])],
    });
    const index = new GraphIndex(g);
    expect(index.isConstant('x')).toBe(false);
    expect(index.isConstant('w')).toBe(true);
  });
});

describe('subgraphs: Silero VAD (network inside If branches)', () => {
  let model: Model;
  let index: GraphIndex;
  beforeAll(() => {
    model = loadModel(REAL_MODELS.silero);
    index = new GraphIndex(model.proto.graph!, model.file);
  });

  it('reaches every node of every graph through allNodes', () => {
    const all = [...index.allNodes()];
    const expected = [...walkGraphs(model.proto.graph!)].flatMap((g) => g.node);
    expect(all.length).toBe(expected.length);
    expect(all.length).toBe(250);
    expect(new Set(all.map((r) => r.node))).toEqual(new Set(expected));
    expect(model.proto.graph!.node.map((n) => n.opType)).toEqual(['Equal', 'If']);
    expect(index.scopes.length).toBe(19);
    for (const ref of all) expect(index.scopeOf(ref.node)).toBe(ref.graph);
  });

  it('gives every subgraph its owner and parent, and orders each graph topologically', () => {
    for (const s of index.scopes) {
      if (s === index.main) continue;
      expect(s.owner!.node.opType).toBe('If');
      expect(s.parent!.graph.node).toContain(s.owner!.node);
      expect(s.path.startsWith(`${s.parent!.path}/`)).toBe(true);
      expect(s.path).toMatch(/\/(then|else)_branch$/);
    }
    for (const s of index.scopes) expectTopological(index, s);
  });

  it('resolves outer-scope values from inside the branches', () => {
    for (const ref of index.allNodes()) {
      for (const inp of ref.node.input) if (inp) expect(resolvable(index, inp, ref.graph), `${inp} in ${ref.graph.path}`).toBe(true);
    }
    const then = index.scopes.find((s) => s.path === 'main/If_25/then_branch')!;
    // The first layer's weights are main-graph initializers read from inside the branch.
    const w = 'model.first_layer.0.dw_conv.0.weight';
    expect(then.initializers.has(w)).toBe(false);
    expect(index.main.initializers.has(w)).toBe(true);
    expect(index.isConstant(w, then)).toBe(true);
    expect(index.constant(w, then)).toBe(index.main.initializers.get(w));
    const conv = index.consumers(w, then)[0];
    expect(conv.node.opType).toBe('Conv');
    expect(quantizableLayers(index).some((l) => l.node === conv.node)).toBe(true);
    // Graph inputs of the main graph are runtime values everywhere.
    expect(index.isConstant('input', then)).toBe(false);
    expect(index.producer('input', then)).toBeUndefined();
    // A nested branch reads a value produced one level up.
    const nested = index.scopes.find((s) => s.path === 'main/If_25/then_branch/If_177/else_branch')!;
    expect(index.producer('284', nested)!.graph).toBe(then);
    expect(index.producer('284', nested)!.node.opType).toBe('Transpose');
  });

  it('finds the 36 Conv layers inside the branches and none in the main graph', () => {
    const layers = quantizableLayers(index);
    expect(layers.length).toBe(36);
    expect(layers.every((l) => l.opType === 'Conv' && l.scope !== index.main)).toBe(true);
    expect(layers.filter((l) => l.scope.path === 'main/If_25/then_branch').length).toBe(18);
    expect(layers.filter((l) => l.scope.path === 'main/If_25/else_branch').length).toBe(18);
    expect(new Set(layers.map((l) => l.id)).size).toBe(36);
  });
});

describe('quantizableLayers on the other real models', () => {
  it('fmnist_mlp: 3 Gemm', () => {
    const layers = quantizableLayers(new GraphIndex(loadModel(FMNIST.mlp).proto.graph!));
    expect(layers.map((l) => l.opType)).toEqual(['Gemm', 'Gemm', 'Gemm']);
    expect(layers[0].weightDims).toEqual([layers[0].weightDims[0], 784]);
  });

  it('PaddleOCR rec: weights in Constant nodes; 38 Conv + 9 MatMul (4 activation x activation MatMuls skipped)', () => {
    const m = loadModel(REAL_MODELS.paddleRec);
    expect(m.proto.graph!.initializer.length).toBe(0);
    const index = new GraphIndex(m.proto.graph!);
    const layers = quantizableLayers(index);
    expect(layers.filter((l) => l.opType === 'Conv').length).toBe(38);
    expect(layers.filter((l) => l.opType === 'MatMul').length).toBe(9);
    expect(layers.length).toBe(47);
    for (const l of layers) expect(index.producer(l.weight)!.node.opType).toBe('Constant');
    const allMatMuls = [...index.allNodes()].filter((r) => r.node.opType === 'MatMul');
    expect(allMatMuls.length).toBe(13);
  });

  it('PaddleOCR det and cls', () => {
    const det = quantizableLayers(new GraphIndex(loadModel(REAL_MODELS.paddleDet).proto.graph!));
    expect(det.filter((l) => l.opType === 'Conv').length).toBe(62);
    expect(det.filter((l) => l.opType === 'ConvTranspose').length).toBe(2);
    const cls = quantizableLayers(new GraphIndex(loadModel(REAL_MODELS.paddleCls).proto.graph!));
    expect(cls.length).toBe(54);
  });
});
