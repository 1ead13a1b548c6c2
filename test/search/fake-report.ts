import type { SensitivityReport } from '../../src/documents/index.js';

/** A synthetic sensitivity report: layer i has Ω and measured loss growing with `weights[i]`. */
export function fakeReport(weights: readonly number[], params = 1000): SensitivityReport {
  return {
    kind: 'qtool.sensitivity',
    version: 1,
    model: { file: 'fake.onnx', sha256: '0' },
    loss: 'kl',
    output: 'logits',
    measuredPath: 'weights',
    settings: { bits: [4, 8], probes: 8, minProbes: 4, relStderr: 0.05, epsilonRel: 0.01, stabilityProbes: 0, samples: 8, covarianceRows: 100, seed: 1, blockSize: 32 },
    baseLoss: 0,
    allLowLoss: null,
    otherBytes: 100,
    layers: weights.map((w, i) => ({
      id: `layer${i}`,
      opType: 'Gemm',
      weight: `w${i}`,
      weightDims: [params / 10, 10],
      parameters: params,
      floatBytes: 4 * params,
      hessian: { trace: w, stderr: 0, probes: 8, epsilon: 0.01, epsilonRel: 0.01, traceHalfEpsilon: null, traceSameProbes: null, stabilityRelDiff: null, isStable: null },
      layerwise: null,
      bits: [
        { bits: 4, quantErrorSq: 1, omega: w, reconstructionError: null, measuredLoss: w, sizeBytes: params / 2 + 4 * (params / 32) },
        { bits: 8, quantErrorSq: 0.01, omega: w / 100, reconstructionError: null, measuredLoss: w / 100, sizeBytes: params + 40 },
      ],
      leaveOneOut: null,
      score: 0,
    })),
    runs: { reference: 1, hessian: 0, measured: 0 },
  };
}
