import { makeTensor, Rng, type Tensor } from '../../src/tensor/index.js';

/**
 * Text-like images: rows of dark stroke "glyphs" on a light background, 3x3 blur, small noise and
 * tint, normalised as PaddleOCR does ((v - mean) / std for det, v·2 - 1 for rec/cls). Uniform noise
 * is no test for the detector: its probability map is ~1e-6 everywhere.
 */
export function textImages(n: number, h: number, w: number, seed: number, det: boolean, glyph: number): Tensor<'float32'> {
  const r = new Rng(seed);
  const out = new Float32Array(n * 3 * h * w);
  for (let s = 0; s < n; s++) {
    const img = new Float32Array(h * w).fill(190 + 60 * r.next());
    const fg = 10 + 70 * r.next();
    for (let y = 2 + r.int(4); y + glyph < h; y += glyph + 2 + r.int(glyph)) {
      for (let x = 2 + r.int(glyph); x + glyph < w - r.int(w / 3); x += glyph + 1 + r.int(glyph / 4)) {
        for (let k = 0, strokes = 2 + r.int(4); k < strokes; k++) {
          const vertical = r.next() < 0.5;
          const at = r.int(glyph);
          const len = Math.floor(glyph * (0.4 + 0.6 * r.next()));
          const from = r.int(glyph - len + 1);
          for (let i = 0; i < len; i++) for (let t = 0; t < Math.max(1, glyph >> 3); t++) img[(y + (vertical ? from + i : at + t)) * w + x + (vertical ? at + t : from + i)] = fg;
        }
      }
    }
    for (let c = 0; c < 3; c++) {
      const tint = r.next() * 20 - 10;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let a = 0;
          let m = 0;
          for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if (y + dy >= 0 && y + dy < h && x + dx >= 0 && x + dx < w) (a += img[(y + dy) * w + x + dx]), m++;
          const v = Math.min(255, Math.max(0, a / m + tint + (r.next() - 0.5) * 8)) / 255;
          out[((s * 3 + c) * h + y) * w + x] = det ? (v - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c] : v * 2 - 1;
        }
      }
    }
  }
  return makeTensor('float32', [n, 3, h, w], out);
}

/** Several images stacked into one [n, 3, h, w] tensor, each drawn from its own seed (seeds[i]). */
export function textImagesOfSeeds(seeds: readonly number[], h: number, w: number, det: boolean, glyph: number): Tensor<'float32'> {
  const per = 3 * h * w;
  const out = new Float32Array(seeds.length * per);
  seeds.forEach((s, i) => out.set(textImages(1, h, w, s, det, glyph).data, i * per));
  return makeTensor('float32', [seeds.length, 3, h, w], out);
}
