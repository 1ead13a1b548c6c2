import { describe, expect, it } from 'vitest';
import {
  AttributeType,
  GraphIndex,
  NameAllocator,
  OP_KINDS,
  attr,
  floatTensorProto,
  getAttr,
  getFloatAttr,
  getIntAttr,
  getIntsAttr,
  getStringAttr,
  loadModel,
  makeGraph,
  makeModel,
  makeNode,
  makeValueInfo,
  nodeId,
  opsetVersion,
  quantizableLayers,
  ModelProtoSchema,
} from '../../src/onnx/index.js';
import { toBinary } from '@bufbuild/protobuf';
import { Session } from '../../src/runtime/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST, REAL_MODELS } from '../helpers/paths.js';

describe('attr', () => {
  it('infers attribute types', () => {
    expect(attr('a', 3).type).toBe(AttributeType.INT);
    expect(attr('a', 3n).i).toBe(3n);
    expect(attr('a', 0.5)).toMatchObject({ type: AttributeType.FLOAT, f: 0.5 });
    expect(attr('a', 'NOTSET').type).toBe(AttributeType.STRING);
    expect(attr('a', [1, 2]).ints).toEqual([1n, 2n]);
    expect(attr('a', [1.5, 2]).type).toBe(AttributeType.FLOATS);
    expect(attr('a', { float: 1 })).toMatchObject({ type: AttributeType.FLOAT, f: 1 });
    expect(getFloatAttr(makeNode({ opType: 'Gemm', inputs: [], outputs: [], attrs: { alpha: 2 } }), 'alpha', 1)).toBe(2);
    expect(attr('a', { floats: [1, 2] })).toMatchObject({ type: AttributeType.FLOATS, floats: [1, 2] });
    expect(attr('a', { ints: [] }).type).toBe(AttributeType.INTS);
    expect(attr('a', ['x', 'y']).type).toBe(AttributeType.STRINGS);
    expect(attr('a', floatTensorProto('t', [1], [1])).type).toBe(AttributeType.TENSOR);
    expect(attr('a', makeGraph({ name: 'g', nodes: [], inputs: [], outputs: [] })).type).toBe(AttributeType.GRAPH);
  });
});

describe('makeNode / makeGraph / makeModel', () => {
  it('builds a Gemm model that onnxruntime runs, and that round-trips and indexes', async () => {
    const graph = makeGraph({
      name: 'tiny',
      nodes: [
        makeNode({ opType: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['y'], name: 'fc', attrs: { transB: 1, alpha: { float: 1 }, beta: { float: 1 } }, metadata: { 'qtool.origin': 'test' } }),
      ],
      inputs: [makeValueInfo('x', 'float32', ['N', 2])],
      outputs: [makeValueInfo('y', 'float32', ['N', 3])],
      initializers: [floatTensorProto('w', [3, 2], [1, 0, 0, 1, 1, 1]), floatTensorProto('b', [3], [0.5, 0, -1])],
    });
    const proto = makeModel({ graph, opsets: { '': 17 }, producerName: 'qtool-test', metadata: { k: 'v' } });
    expect(opsetVersion(proto)).toBe(17);
    expect(opsetVersion(proto, 'ai.onnx')).toBe(17);
    expect(opsetVersion(proto, 'com.microsoft')).toBeUndefined();
    const fc = graph.node[0];
    expect(getIntAttr(fc, 'transB', 0)).toBe(1);
    expect(getIntAttr(fc, 'transA', 0)).toBe(0);
    expect(getFloatAttr(fc, 'alpha', 2)).toBe(1);
    expect(getAttr(fc, 'nope')).toBeUndefined();
    expect(fc.metadataProps[0]).toMatchObject({ key: 'qtool.origin', value: 'test' });

    const bytes = toBinary(ModelProtoSchema, proto);
    const model = loadModel(bytes, { name: 'tiny.onnx' });
    expect(Buffer.from(toBinary(ModelProtoSchema, model.proto)).equals(Buffer.from(bytes))).toBe(true);
    const layers = quantizableLayers(new GraphIndex(model.proto.graph!));
    expect(layers.map((l) => [l.id, l.weight, l.weightDims])).toEqual([['fc', 'w', [3, 2]]]);

    const s = await Session.open(model);
    const out = await s.run({ x: makeTensor('float32', [1, 2], Float32Array.from([2, 3])) });
    expect([...out.y.data]).toEqual([2.5, 3, 4]);
    await s.release();
  });

  it('reads ints and strings attributes of real models', () => {
    const m = loadModel(FMNIST.cnn);
    const conv = m.proto.graph!.node.find((n) => n.opType === 'Conv')!;
    expect(getIntsAttr(conv, 'kernel_shape')).toEqual([3, 3]);
    expect(getIntsAttr(conv, 'nope')).toBeUndefined();
    const sil = loadModel(REAL_MODELS.silero);
    expect(getStringAttr(makeNode({ opType: 'X', inputs: [], outputs: [], attrs: { mode: 'constant' } }), 'mode')).toBe('constant');
    expect(sil.proto.graph!.node.find((n) => n.opType === 'If')).toBeDefined();
  });
});

describe('NameAllocator', () => {
  it('never hands out a name used anywhere in the model, subgraphs included', () => {
    const m = loadModel(REAL_MODELS.silero);
    const names = new NameAllocator(m.proto.graph!);
    expect(names.has('input')).toBe(true);
    expect(names.has('If_25')).toBe(true);
    expect(names.has('284')).toBe(true); // produced inside a nested If branch
    expect(names.allocate('input')).toBe('input_1');
    expect(names.allocate('input')).toBe('input_2');
    expect(names.allocate('fresh')).toBe('fresh');
    expect(names.allocate('fresh')).toBe('fresh_1');
    expect(new NameAllocator().allocate('x')).toBe('x');
  });
});

describe('OP_KINDS and nodeId', () => {
  it('names weight, bias and activation inputs', () => {
    expect(OP_KINDS.get('Conv')).toMatchObject({ weightInput: 1, biasInput: 2, activationInput: 0, family: 'conv' });
    expect(OP_KINDS.get('MatMul')).toMatchObject({ weightInput: 1, family: 'matmul' });
    expect(OP_KINDS.get('Relu')).toBeUndefined();
  });

  it('gives unnamed nodes a position-based id, qualified by graph path in subgraphs', () => {
    const index = new GraphIndex(makeGraph({ name: 'g', nodes: [makeNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] })], inputs: [], outputs: [] }));
    expect(nodeId(index.main.graph.node[0], index.main, 0)).toBe('Relu#0');
    const sub = { ...index.main, path: 'main/if/then_branch' };
    expect(nodeId(index.main.graph.node[0], sub, 4)).toBe('Relu#4@main/if/then_branch');
  });
});
