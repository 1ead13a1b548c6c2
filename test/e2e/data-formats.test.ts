import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../../src/data/index.js';
import { buildCnnModel } from '../../src/fixtures/index.js';
import { saveModel } from '../../src/onnx/index.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';
import { identityModel } from '../helpers/input-models.js';

// The CLI on image folders, audio and random data with --dim: the data flags reach every command.
describe('qtool on images, audio and --dim', () => {
  let dir: string;
  let model: string;
  let images: string;
  beforeAll(async () => {
    dir = makeTempDir();
    model = path.join(dir, 'cnn.onnx');
    saveModel(buildCnnModel({ size: 16, classes: 3, width: 8, seed: 3 }), model);
    images = path.join(dir, 'images');
    for (const [c, hue] of [['apple', [200, 30, 30]], ['leaf', [30, 200, 30]], ['sky', [30, 30, 200]]] as const) {
      fs.mkdirSync(path.join(images, c), { recursive: true });
      for (let k = 0; k < 4; k++) {
        const px = Buffer.alloc(24 * 20 * 3);
        for (let i = 0; i < 24 * 20; i++) for (let ch = 0; ch < 3; ch++) px[i * 3 + ch] = Math.min(255, hue[ch] + ((i * 7 + k * 31) % 40));
        await sharp(px, { raw: { width: 24, height: 20, channels: 3 } }).jpeg().toFile(path.join(images, c, `${k}.jpg`));
      }
    }
  });

  it('calibrate reads an ImageFolder and prints the preprocessing it assumed', () => {
    const r = spawnQtool(['calibrate', model, '--data', images, '-o', path.join(dir, 'calib.json'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.samples).toBe(12);
    expect(summary.data).toMatch(/12 images in 3 class folders/);
    expect(r.stderr).toMatch(/images: assumed --preprocess resize=16x16,fit=cover,layout=nchw,channels=rgb,scale=1\/255/);
  });

  it('quantize with --preprocess, then eval against the float model with labels from the class folders', () => {
    const q = path.join(dir, 'cnn.int8.onnx');
    const r = spawnQtool(['quantize', model, '--data', images, '--preprocess', 'scale=1/255,mean=0.5,std=0.25', '-o', q, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).calibration.source).toBe(images);
    const e = spawnQtool(['eval', q, '--data', images, '--preprocess', 'scale=1/255,mean=0.5,std=0.25', '--reference', model, '--json']);
    expect(e.code, e.stderr).toBe(0);
    const report = JSON.parse(e.stdout);
    expect(report.metric).toBe('accuracy');
    expect(report.samples).toBe(12);
    expect(report.labels).toMatch(/^labels of /);
    expect(report.reference.fidelity.cosine).toBeGreaterThan(0.9);
  });

  it('a corrupt image and an unsupported WAV exit 3 naming the file, without a stack', () => {
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'a.jpg'), fs.readFileSync(path.join(images, 'sky', '0.jpg')).subarray(0, 100));
    const r = spawnQtool(['calibrate', model, '--data', bad, '-o', path.join(dir, 'bad.json')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${path.join(bad, 'a.jpg')}: cannot decode image`);
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'bad.json'))).toBe(false);
    const audioModel = path.join(dir, 'audio.onnx');
    saveModel(identityModel([{ name: 'audio', dtype: 'float32', dims: ['batch', 400] }]), audioModel);
    const wav = path.join(dir, 'x.wav');
    fs.writeFileSync(wav, encodeWav(new Float32Array(800), { sampleRate: 16000, format: 7 }));
    const b = spawnQtool(['bench', audioModel, '--data', wav, '--runs', '2', '--warmup', '0']);
    expect(b.code).toBe(3);
    expect(b.stderr).toContain(`${wav}: unsupported WAV encoding µ-law`);
    expect(hasStackTrace(b.stderr)).toBe(false);
  });

  it('--dim sets a dynamic dim of random data on bench and eval; a bad --dim is a usage error', () => {
    const dyn = path.join(dir, 'dyn.onnx');
    saveModel(identityModel([{ name: 'x', dtype: 'float32', dims: ['batch', 'seq'] }]), dyn);
    const b = spawnQtool(['bench', dyn, '--data', 'random', '--dim', 'seq=7', '--runs', '2', '--warmup', '0', '--json']);
    expect(b.code, b.stderr).toBe(0);
    const e = spawnQtool(['eval', dyn, '--data', 'random', '--dim', 'seq=5', '--reference', dyn, '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).data).toBe('random');
    const bad = spawnQtool(['eval', dyn, '--data', 'random', '--dim', 'seq', '--reference', dyn]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--dim: expected NAME=positive integer, got "seq"/);
  });
});
