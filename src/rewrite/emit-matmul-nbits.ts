import { getFloatAttr, getIntAttr, type GraphScope, type NodeProto } from '../onnx/index.js';
import { quantizeForSpec } from './emit-qdq.js';
import type { EmitState } from './emit-state.js';
import type { WeightSpec } from './edits.js';

/** The weight of a MatMul/Gemm as [K, N] row-major, alpha folded in, plus the bias (beta folded in). */
export function matmulWeightKN(st: EmitState, scope: GraphScope, node: NodeProto): { w: Float32Array; K: number; N: number; bias?: Float32Array } {
  const { data, dims } = st.constantFloat(node.input[1], scope);
  const isGemm = node.opType === 'Gemm';
  const transB = isGemm ? getIntAttr(node, 'transB', 0) : 0;
  const alpha = isGemm ? getFloatAttr(node, 'alpha', 1) : 1;
  const [K, N] = transB ? [dims[1], dims[0]] : [dims[0], dims[1]];
  let w: Float32Array;
  if (transB) {
    w = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) w[k * N + n] = data[n * K + k] * alpha;
  } else {
    w = alpha === 1 ? data : data.map((v) => v * alpha);
  }
  let bias: Float32Array | undefined;
  if (isGemm && node.input[2]) {
    const beta = getFloatAttr(node, 'beta', 1);
    const b = st.constantFloat(node.input[2], scope).data;
    bias = beta === 1 ? b : b.map((v) => v * beta);
  }
  return { w, K, N, bias };
}

/** [K, N] → [N, K] */
function transpose(w: Float32Array, K: number, N: number): Float32Array {
  const t = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) t[n * K + k] = w[k * N + n];
  return t;
}

/**
 * com.microsoft MatMulNBits (onnxruntime contrib op): B uint8 [N][n_blocks][blob] with blocks of
 * `blockSize` consecutive K values of one output column (low nibble first for 4 bits), K padded with
 * the zero point; scales float [N·n_blocks]; zero points uint8 packed [N·ceil(n_blocks·bits/8)]
 * (even block in the low nibble), or omitted for symmetric weights (then the kernel uses 2^(bits−1)).
 */
export function emitMatMulNBits(st: EmitState, scope: GraphScope, node: NodeProto, e: { bits: 4 | 8; blockSize: number; symmetric: boolean; clip: 'none' | 'mse'; accuracyLevel: number }): void {
  const { w, K, N, bias } = matmulWeightKN(st, scope, node);
  const B = e.blockSize;
  const nb = Math.ceil(K / B);
  const cc = st.cloneOf(node);
  const origin = st.idOf(node);
  const wName = node.input[1];
  // A weight shared by several MatMuls (same settings, same alpha/transB) is packed once.
  const cacheKey = `nbits\u0000${scope.path}\u0000${wName}\u0000${e.bits}/${e.blockSize}/${e.symmetric}/${e.clip}\u0000${node.opType}\u0000${getIntAttr(node, 'transB', 0)}\u0000${getFloatAttr(node, 'alpha', 1)}`;
  const cached = st.weightCache.get(cacheKey) as { inputs: string[]; bytes: number } | undefined;
  let bName: string;
  let sName: string;
  let zName = '';
  let bytes: number;
  if (cached) {
    [bName, sName, zName] = cached.inputs;
    bytes = cached.bytes;
  } else {
    [bName, sName, zName, bytes] = packNBits(st, scope, node, wName, w, K, N, e);
    st.weightCache.set(cacheKey, { inputs: [bName, sName, zName], bytes });
  }
  const inputs = [cc.input[0], bName, sName, zName];
  if (bias) {
    inputs.push('', st.addInitializer(scope, `${node.input[2]}_bias`, 'float32', [N], Float32Array.from(bias)));
    bytes += 4 * N;
  }
  while (inputs.length > 3 && inputs[inputs.length - 1] === '') inputs.pop();
  const mm = st.node(
    { name: `${node.name || node.opType}_MatMulNBits`, opType: 'MatMulNBits', domain: 'com.microsoft', inputs, outputs: [cc.output[0]], attrs: { K, N, bits: e.bits, block_size: B, accuracy_level: e.accuracyLevel } },
    origin,
  );
  st.replaceNode(scope, node, [mm]);
  st.needDomain('com.microsoft', 1);
  st.tensorMap.set(wName, bName);
  st.weightBytes.set(node, bytes);
}

function packNBits(st: EmitState, scope: GraphScope, node: NodeProto, wName: string, w: Float32Array, K: number, N: number, e: { bits: 4 | 8; blockSize: number; symmetric: boolean; clip: 'none' | 'mse' }): [string, string, string, number] {
  const B = e.blockSize;
  const nb = Math.ceil(K / B);
  const spec: WeightSpec = { bits: e.bits, symmetric: e.symmetric, granularity: 'block', axis: 1, blockSize: B, clip: e.clip };
  const qw = quantizeForSpec(transpose(w, K, N), [N, K], spec, { st, node, weight: wName });
  const mid = 1 << (e.bits - 1);
  const blob = (B * e.bits) / 8;
  const packed = new Uint8Array(N * nb * blob);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const g = n * nb + b;
      const pad = e.symmetric ? mid : qw.zeroPoints[g];
      const base = g * blob;
      for (let j = 0; j < B; j++) {
        const k = b * B + j;
        const v = k < K ? (e.symmetric ? qw.q[n * K + k] + mid : qw.q[n * K + k]) : pad;
        if (e.bits === 8) packed[base + j] = v;
        else packed[base + (j >> 1)] |= (v & 0x0f) << ((j & 1) * 4);
      }
    }
  }
  const bName = st.addInitializer(scope, `${wName}_nbits`, 'uint8', [N, nb, blob], packed);
  const sName = st.addInitializer(scope, `${wName}_nbits_scales`, 'float32', [N * nb], Float32Array.from(qw.scales));
  let zName = '';
  let bytes = packed.length + 4 * N * nb;
  if (!e.symmetric) {
    const perN = Math.ceil((nb * e.bits) / 8);
    const zp = new Uint8Array(N * perN);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < nb; b++) {
        const v = qw.zeroPoints[n * nb + b];
        if (e.bits === 8) zp[n * perN + b] = v;
        else zp[n * perN + (b >> 1)] |= (v & 0x0f) << ((b & 1) * 4);
      }
    }
    zName = st.addInitializer(scope, `${wName}_nbits_zp`, 'uint8', [N * perN], zp);
    bytes += zp.length;
  }
  return [bName, sName, zName, bytes];
}

/**
 * Portable INT4: DequantizeLinear(W int4/uint4 [K, N], scales [ceil(K/B), N], zero points, axis 0,
 * block_size B) → MatMul (opset 21). onnxruntime's DQMatMulToMatMulNBits turns it into MatMulNBits
 * at load time. A Gemm becomes MatMul (+ Add for the bias).
 */
export function emitBlockedQdq(st: EmitState, scope: GraphScope, node: NodeProto, e: { blockSize: number; symmetric: boolean; clip: 'none' | 'mse' }): void {
  const { w, K, N, bias } = matmulWeightKN(st, scope, node);
  const spec: WeightSpec = { bits: 4, symmetric: e.symmetric, granularity: 'block', axis: 0, blockSize: e.blockSize, clip: e.clip };
  const qw = quantizeForSpec(w, [K, N], spec, { st, node, weight: node.input[1] });
  const type = e.symmetric ? 'int4' : 'uint4';
  const ints = e.symmetric ? Int8Array.from(qw.q) : Uint8Array.from(qw.q);
  const wName = node.input[1];
  const origin = st.idOf(node);
  const q = st.addInitializer(scope, `${wName}_q`, type, [K, N], ints as never);
  const [s, z] = st.addScaleZp(scope, wName, qw.scales, qw.zeroPoints, type, qw.scaleDims);
  const deq = st.allocate(`${wName}_dq`);
  const cc = st.cloneOf(node);
  const out = cc.output[0];
  const nodes: NodeProto[] = [
    st.node({ name: `${wName}_DQ`, opType: 'DequantizeLinear', inputs: [q, s, z], outputs: [deq], attrs: { axis: 0, block_size: e.blockSize } }, origin),
  ];
  if (bias) {
    const mmOut = st.allocate(`${out}_matmul`);
    const bName = st.addInitializer(scope, `${node.input[2]}_bias`, 'float32', [N], Float32Array.from(bias));
    nodes.push(st.node({ name: `${node.name || node.opType}_MatMul`, opType: 'MatMul', inputs: [cc.input[0], deq], outputs: [mmOut] }, origin));
    nodes.push(st.node({ name: `${node.name || node.opType}_Add`, opType: 'Add', inputs: [mmOut, bName], outputs: [out] }, origin));
  } else {
    nodes.push(st.node({ name: `${node.name || node.opType}_MatMul`, opType: 'MatMul', inputs: [cc.input[0], deq], outputs: [out] }, origin));
  }
  st.replaceNode(scope, node, nodes);
  st.minOpset = Math.max(st.minOpset, 21);
  st.tensorMap.set(wName, q);
  st.weightBytes.set(node, Math.ceil((K * N) / 2) + qw.scales.length * 4 + Math.ceil(qw.scales.length / 2) + (bias ? 4 * N : 0));
}

/**
 * Dynamic W8: com.microsoft DynamicQuantizeMatMul(A, B int8 [K, N], b_scale [N], b_zero_point, bias):
 * A is quantized to uint8 per tensor at run time (the fused form of DynamicQuantizeLinear +
 * MatMulInteger + scale Mul that onnxruntime's optimizer builds).
 */
export function emitDynamicMatMul(st: EmitState, scope: GraphScope, node: NodeProto, e: { clip: 'none' | 'mse' }): void {
  const { w: w0, K, N, bias } = matmulWeightKN(st, scope, node);
  const origin = st.idOf(node);
  // LLM.int8()-style split: outlier input channels run through a small float MatMul.
  const outliers = scope.path === 'main' ? st.outlierChannels?.(origin) : undefined;
  const split = outliers && outliers.length > 0 && outliers.length < K ? outliers : undefined;
  let w = w0;
  if (split) {
    w = Float32Array.from(w0);
    for (const k of split) w.fill(0, k * N, (k + 1) * N);
  }
  const spec: WeightSpec = { bits: 8, symmetric: true, granularity: 'channel', axis: 1, clip: e.clip };
  const qw = quantizeForSpec(w, [K, N], spec, { st, node, weight: node.input[1] });
  const wName = node.input[1];
  const q = st.addInitializer(scope, `${wName}_q`, 'int8', [K, N], Int8Array.from(qw.q));
  const s = st.addInitializer(scope, `${wName}_scale`, 'float32', [N], Float32Array.from(qw.scales));
  const z = st.addInitializer(scope, `${wName}_zp`, 'int8', [N], new Int8Array(N));
  const cc = st.cloneOf(node);
  const x = cc.input[0];
  const out = cc.output[0];
  const nodes: NodeProto[] = [];
  let xMain = x;
  let yMain = out;
  if (split) {
    const m = split.length;
    const mask = new Float32Array(K).fill(1);
    for (const k of split) mask[k] = 0;
    const maskName = st.addInitializer(scope, `${wName}_inlier_mask`, 'float32', [K], mask);
    xMain = st.allocate(`${x}_inliers`);
    nodes.push(st.node({ name: `${node.name || node.opType}_inliers`, opType: 'Mul', inputs: [x, maskName], outputs: [xMain] }, origin));
    const idx = st.addInitializer(scope, `${wName}_outlier_idx`, 'int64', [m], BigInt64Array.from(split, (k) => BigInt(k)));
    const xOut = st.allocate(`${x}_outliers`);
    nodes.push(st.node({ name: `${node.name || node.opType}_outliers`, opType: 'Gather', inputs: [x, idx], outputs: [xOut], attrs: { axis: -1 } }, origin));
    const wOut = new Float32Array(m * N);
    split.forEach((k, i) => wOut.set(w0.subarray(k * N, (k + 1) * N), i * N));
    const wOutName = st.addInitializer(scope, `${wName}_outlier_rows`, 'float32', [m, N], wOut);
    const yOut = st.allocate(`${out}_outliers`);
    nodes.push(st.node({ name: `${node.name || node.opType}_outlier_matmul`, opType: 'MatMul', inputs: [xOut, wOutName], outputs: [yOut] }, origin));
    yMain = st.allocate(`${out}_inliers`);
    nodes.push(st.node({ name: `${node.name || node.opType}_outlier_sum`, opType: 'Add', inputs: [yMain, yOut], outputs: [out] }, origin));
  }
  const inputs = [xMain, q, s, z];
  if (bias) inputs.push(st.addInitializer(scope, `${node.input[2]}_bias`, 'float32', [N], Float32Array.from(bias)));
  const dq = st.node({ name: `${node.name || node.opType}_DynamicQuantizeMatMul`, opType: 'DynamicQuantizeMatMul', domain: 'com.microsoft', inputs, outputs: [yMain] }, origin);
  // Order: Mul, Gather, DynamicQuantizeMatMul, outlier MatMul, Add.
  st.replaceNode(scope, node, split ? [nodes[0], nodes[1], dq, nodes[2], nodes[3]] : [dq]);
  st.needDomain('com.microsoft', 1);
  st.tensorMap.set(wName, q);
  st.weightBytes.set(node, K * N + 5 * N + (bias ? 4 * N : 0) + (split ? 4 * split.length * N + 4 * K + 8 * split.length : 0));
  if (split) st.notes.push(`${origin}: ${split.length} outlier input channels computed in float (LLM.int8() split)`);
}

/**
 * com.microsoft GatherBlockQuantized (onnxruntime CPU, verified on 1.30): uint8 data [rows, dim] (8 bits)
 * or [rows, dim/2] (4 bits, low nibble first), scales [rows, ceil(dim/B)], gather_axis 0, quantize_axis 1.
 * Symmetric blocks stored offset by the kernel's default zero point (128 or 8), so no zero-point input.
 */
export function emitGatherQuantized(st: EmitState, scope: GraphScope, node: NodeProto, e: { bits: 4 | 8; blockSize: number }): void {
  const table = node.input[0];
  const { data, dims } = st.constantFloat(table, scope);
  const [rows, dim] = dims;
  const spec: WeightSpec = { bits: e.bits, symmetric: true, granularity: 'block', axis: 1, blockSize: e.blockSize, clip: 'none' };
  const qw = quantizeForSpec(data, dims, spec);
  const mid = 1 << (e.bits - 1);
  const packed = new Uint8Array(e.bits === 8 ? rows * dim : (rows * dim) / 2);
  for (let i = 0; i < qw.q.length; i++) {
    const v = qw.q[i] + mid;
    if (e.bits === 8) packed[i] = v;
    else packed[i >> 1] |= (v & 0x0f) << ((i & 1) * 4);
  }
  const base = `${table}_gbq`;
  const dName = st.addInitializer(scope, base, 'uint8', e.bits === 8 ? [rows, dim] : [rows, dim / 2], packed);
  const sName = st.addInitializer(scope, `${base}_scales`, 'float32', qw.scaleDims, Float32Array.from(qw.scales));
  const cc = st.cloneOf(node);
  const g = st.node(
    { name: `${node.name || 'Gather'}_GatherBlockQuantized`, opType: 'GatherBlockQuantized', domain: 'com.microsoft', inputs: [dName, cc.input[1], sName], outputs: [cc.output[0]], attrs: { bits: e.bits, block_size: e.blockSize, gather_axis: 0, quantize_axis: 1 } },
    st.idOf(node),
  );
  st.replaceNode(scope, node, [g]);
  st.needDomain('com.microsoft', 1);
  st.tensorMap.set(table, dName);
  st.notes.push(`embedding table "${table}" [${rows}, ${dim}] → GatherBlockQuantized ${e.bits}-bit, blocks of ${e.blockSize} (${(4 * rows * dim / 1e6).toFixed(1)} MB → ${((packed.length + 4 * qw.scales.length) / 1e6).toFixed(1)} MB)`);
}
