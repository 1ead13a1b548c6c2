import { makeGraph, makeModel, makeNode, makeValueInfo } from '../onnx/index.js';
import { makeTensor } from '../tensor/index.js';
import { Session } from './session.js';

/** C = A·B through onnxruntime's MatMul (MLAS): the engine quant/'s blocked linear algebra takes. */
export interface MatMulSession {
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** One session with a single MatMul of symbolic shape [m, k]·[k, n], reused for every product. */
export async function openMatMulSession(opts: { threads?: number } = {}): Promise<MatMulSession> {
  const graph = makeGraph({
    name: 'qtool_matmul',
    nodes: [makeNode({ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] })],
    inputs: [makeValueInfo('a', 'float32', ['m', 'k']), makeValueInfo('b', 'float32', ['k', 'n'])],
    outputs: [makeValueInfo('c', 'float32', ['m', 'n'])],
    initializers: [],
  });
  const session = await Session.open({ proto: makeModel({ graph, opsets: { '': 13 } }), file: '<matmul>', baseDir: '.' }, { threads: opts.threads ?? 1, name: '<qtool matmul engine>', memArena: false });
  return {
    async matmul(a, b, m, k, n) {
      const out = await session.run({ a: makeTensor('float32', [m, k], a), b: makeTensor('float32', [k, n], b) }, ['c']);
      return out.c.data as Float32Array;
    },
    release: () => session.release(),
  };
}
