/**
 * `node scripts/render-text-lines.mjs`: render the text-line fixture for the CTC recognizer tests
 * (fixtures/data/text_lines.npy, uint8 grayscale [N, 48, 320], ink dark on light; and
 * fixtures/data/text_lines.json, the strings). Words separated by spaces, DejaVu Sans (opentype.js,
 * devDependency), 4×4 supersampled non-zero fill, deterministic (seeded). Needs the font file only
 * when regenerating; tests read the committed files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import opentype from 'opentype.js';
import { Rng, makeTensor, writeNpy } from '../dist/index.js';

const FONT = process.env.QTOOL_FONT ?? '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buf = fs.readFileSync(FONT);
const font = opentype.parse(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));

/** Coverage in [0, 1] of `text` drawn at (x0, baseline) with the given pixel size, [h, w]. */
function renderLine(text, h, w, size, x0, baseline) {
  const segs = [];
  const line = (x1, y1, x2, y2) => y1 !== y2 && segs.push([x1, y1, x2, y2]);
  let pen = x0;
  for (const ch of text) {
    const g = font.charToGlyph(ch);
    let cx = 0, cy = 0, sx = 0, sy = 0;
    for (const c of g.getPath(pen, baseline, size).commands) {
      if (c.type === 'M') { cx = sx = c.x; cy = sy = c.y; }
      else if (c.type === 'L') { line(cx, cy, c.x, c.y); cx = c.x; cy = c.y; }
      else if (c.type === 'Q' || c.type === 'C') {
        const n = 10;
        let px = cx, py = cy;
        for (let i = 1; i <= n; i++) {
          const t = i / n, u = 1 - t;
          const [x, y] = c.type === 'Q'
            ? [u * u * cx + 2 * u * t * c.x1 + t * t * c.x, u * u * cy + 2 * u * t * c.y1 + t * t * c.y]
            : [u * u * u * cx + 3 * u * u * t * c.x1 + 3 * u * t * t * c.x2 + t * t * t * c.x, u * u * u * cy + 3 * u * u * t * c.y1 + 3 * u * t * t * c.y2 + t * t * t * c.y];
          line(px, py, x, y); px = x; py = y;
        }
        cx = c.x; cy = c.y;
      } else if (c.type === 'Z') { line(cx, cy, sx, sy); cx = sx; cy = sy; }
    }
    pen += (g.advanceWidth * size) / font.unitsPerEm;
  }
  const S = 4;
  const out = new Float32Array(h * w);
  for (let y = 0; y < h * S; y++) {
    const fy = (y + 0.5) / S;
    const xs = [];
    for (const [x1, y1, x2, y2] of segs) if ((fy >= y1 && fy < y2) || (fy >= y2 && fy < y1)) xs.push([x1 + ((fy - y1) / (y2 - y1)) * (x2 - x1), y2 > y1 ? 1 : -1]);
    xs.sort((a, b) => a[0] - b[0]);
    let wind = 0;
    for (let i = 0; i < xs.length - 1; i++) {
      wind += xs[i][1];
      if (wind === 0) continue;
      const a = Math.max(0, Math.ceil(xs[i][0] * S - 0.5));
      const b = Math.min(w * S, Math.ceil(xs[i + 1][0] * S - 0.5));
      for (let x = a; x < b; x++) out[Math.floor(y / S) * w + Math.floor(x / S)] += 1 / (S * S);
    }
  }
  return out;
}

const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'model', '2024', 'data', 'ONNX', 'quant', 'speed', 'test', 'line', 'text', 'hello', 'world', 'value'];
const N = 32, H = 48, W = 320;
const r = new Rng(2024);
const pixels = new Uint8Array(N * H * W);
const texts = [];
for (let s = 0; s < N; s++) {
  const words = Array.from({ length: 2 + r.int(2) }, () => WORDS[r.int(WORDS.length)]);
  const text = words.join(' ');
  texts.push(text);
  const ink = renderLine(text, H, W, 26 + r.int(6), 4 + r.int(24), 34 + r.int(5));
  const bg = 200 + 55 * r.next();
  const fg = 10 + 50 * r.next();
  for (let i = 0; i < H * W; i++) pixels[s * H * W + i] = Math.round(Math.min(255, Math.max(0, bg + (fg - bg) * Math.min(1, ink[i]) + (r.next() - 0.5) * 8)));
}
writeNpy(path.join(root, 'fixtures/data/text_lines.npy'), makeTensor('uint8', [N, H, W], pixels));
fs.writeFileSync(path.join(root, 'fixtures/data/text_lines.json'), JSON.stringify({ font: path.basename(FONT), height: H, width: W, texts }, null, 1) + '\n');
console.log(`wrote ${N} lines`);
