import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSummarySchema, type ModelSummary } from '../../src/documents/index.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { FMNIST, REAL_MODELS, ROOT } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('qtool-e2e-inspect-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function inspectJson(file: string, cwd?: string): ModelSummary {
  const r = spawnQtool(['inspect', file, '--json'], { cwd, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return ModelSummarySchema.parse(JSON.parse(r.stdout));
}

describe('qtool inspect --json', () => {
  it('fmnist_cnn: matches the golden file (run from the repo root with a relative path)', async () => {
    const rel = path.relative(ROOT, FMNIST.cnn);
    const r = spawnQtool(['inspect', rel, '--json'], { cwd: ROOT, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.endsWith('}\n')).toBe(true);
    const s = ModelSummarySchema.parse(JSON.parse(r.stdout));
    expect(s.file).toBe('fixtures/models/fmnist_cnn.onnx');
    expect(s.irVersion).toBe(8);
    expect(s.opsets).toEqual([{ domain: 'ai.onnx', version: 17 }]);
    expect(s.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }]);
    expect(s.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['N', 10] }]);
    expect(s.quantizableLayers.map((l) => l.opType)).toEqual([...Array(7).fill('Conv'), 'Gemm']);
    expect(s.parameters.count).toBe(116298);
    expect(s.parameters.bytes).toBe(116298 * 4);
    expect(s.parameters.inConstantNodes).toBe(0);
    expect(s.nodeCount).toBe(19);
    expect(s.subgraphs).toEqual([]);
    expect(s.externalData).toEqual([]);
    await expect(r.stdout).toMatchFileSnapshot('../../fixtures/golden/inspect-fmnist_cnn.json');
  });

  it('is deterministic: same bytes twice', () => {
    const a = spawnQtool(['inspect', FMNIST.mlp, '--json']);
    const b = spawnQtool(['inspect', FMNIST.mlp, '--json']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(ModelSummarySchema.parse(JSON.parse(a.stdout)).quantizableLayers.map((l) => l.opType)).toEqual(['Gemm', 'Gemm', 'Gemm']);
  });

  it('Silero VAD: layers and subgraphs inside If branches', () => {
    const s = inspectJson(REAL_MODELS.silero);
    expect(s.irVersion).toBe(8);
    expect(s.opsets.find((o) => o.domain === 'ai.onnx')?.version).toBe(16);
    expect(s.inputs.map((v) => v.name)).toEqual(['input', 'sr', 'h', 'c']);
    expect(s.outputs.map((v) => v.name)).toEqual(['output', 'hn', 'cn']);
    expect(s.nodeCount).toBe(250);
    expect(s.opHistogram.If).toBeGreaterThan(1);
    expect(s.opHistogram.LSTM).toBe(8);
    expect(s.opHistogram.If).toBe(9);
    expect(s.quantizableLayers).toHaveLength(36);
    expect(s.quantizableLayers.every((l) => l.graph.startsWith('main/If_25/'))).toBe(true);
    expect(s.subgraphs).toHaveLength(18);
    expect(s.subgraphs.every((g) => g.ownerOp === 'If')).toBe(true);
    expect(s.subgraphs.reduce((n, g) => n + g.nodeCount, 0)).toBe(248);
  });

  it('PaddleOCR rec: weights in Constant nodes, opset 9', () => {
    const s = inspectJson(REAL_MODELS.paddleRec);
    expect(s.opsets.find((o) => o.domain === 'ai.onnx')?.version).toBe(9);
    expect(s.parameters.inInitializers).toBe(0);
    expect(s.parameters.inConstantNodes).toBe(s.parameters.count);
    expect(s.parameters.count).toBeGreaterThan(2_000_000);
    expect(s.quantizableLayers).toHaveLength(47);
    expect(s.quantizableLayers.filter((l) => l.opType === 'MatMul')).toHaveLength(9);
    for (const l of s.quantizableLayers) expect(l.parameters).toBe(l.weightShape.reduce((a, b) => a * b, 1));
  });

  it('lists external data files', () => {
    const f = path.join(tmp, 'cnn.onnx');
    saveModel(loadModel(FMNIST.cnn), f, { externalData: true });
    const s = inspectJson('cnn.onnx', tmp);
    expect(s.file).toBe('cnn.onnx');
    expect(s.externalData).toHaveLength(1);
    expect(s.externalData[0].location).toBe('cnn.onnx.data');
    expect(s.externalData[0].tensors).toBe(7);
    expect(s.externalData[0].bytes).toBeGreaterThan(400_000);
    expect(s.parameters.count).toBe(116298);
  });
});

describe('qtool inspect (human)', () => {
  it('fmnist_cnn', () => {
    const r = spawnQtool(['inspect', FMNIST.cnn]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`${FMNIST.cnn}: 457.2 KiB, IR 8, producer pytorch 1.13.0`);
    expect(r.stdout).toContain('opsets: ai.onnx 17');
    expect(r.stdout).toMatch(/input\s+float32\s+\[N, 1, 28, 28\]/);
    expect(r.stdout).toMatch(/logits\s+float32\s+\[N, 10\]/);
    expect(r.stdout).toContain('19 nodes: Add 2, Conv 7, Flatten 1, Gemm 1, GlobalAveragePool 1, Relu 7');
    expect(r.stdout).toContain('quantizable layers: 8');
    expect(r.stdout).toMatch(/\/fc\/Gemm\s+Gemm\s+\[10, 64\]\s+640\s+main/);
  });

  it('Silero VAD shows the subgraph table', () => {
    const r = spawnQtool(['inspect', REAL_MODELS.silero]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('quantizable layers: 36');
    expect(r.stdout).toMatch(/subgraph\s+owner\s+nodes/);
    expect(r.stdout).toMatch(/main\/If_25\/then_branch\s+If\s+88/);
  });

  it('PaddleOCR rec reports the weights held in Constant nodes', () => {
    const r = spawnQtool(['inspect', REAL_MODELS.paddleRec]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('quantizable layers: 47');
    expect(r.stdout).toMatch(/in Constant nodes [1-9]\d+\)/);
  });

  it('a bad model: exit 3, one line, no stack trace', () => {
    const bad = path.join(tmp, 'bad.onnx');
    fs.writeFileSync(bad, '{"json": true}');
    const r = spawnQtool(['inspect', bad, '--json']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`qtool: error E_MODEL_PARSE: ${bad}: not an ONNX model (looks like a text file)\n`);
    expect(hasStackTrace(r.stderr)).toBe(false);
  });
});
