import type { OpRule } from '../edits.js';
import { addRule, mulRule } from './add.js';
import { convRule } from './conv.js';
import { gatherRule } from './gather.js';
import { gemmRule } from './gemm.js';
import { matmulRule } from './matmul.js';
import { passThroughRule } from './pass-through.js';
import { poolRule } from './pool.js';

/** op type → rule (default ai.onnx domain). Ops not listed stay float. Adding an op: one file plus one line. */
export const RULES: ReadonlyMap<string, OpRule> = new Map<string, OpRule>([
  ['Conv', convRule],
  ['ConvTranspose', convRule],
  ['Gemm', gemmRule],
  ['MatMul', matmulRule],
  ['Add', addRule],
  ['Mul', mulRule],
  ['Gather', gatherRule],
  ['GlobalAveragePool', poolRule],
  ['AveragePool', poolRule],
  ['Concat', poolRule],
  ['Reshape', passThroughRule],
  ['Transpose', passThroughRule],
  ['Flatten', passThroughRule],
  ['Squeeze', passThroughRule],
  ['Unsqueeze', passThroughRule],
  ['MaxPool', passThroughRule],
  ['Slice', passThroughRule],
]);
