// Overlap of image decode with onnxruntime: ORT alone, decode alone, streamed (REPS interleaved, medians).
// ratio = streamed wall / ORT wall (target ≤ 1.5); hidden = (ORT + decode − streamed) / decode. node bench/images-overlap.mjs (IMAGES, WIDTH, REPS env)
import * as fs from 'node:fs'; import * as os from 'node:os'; import * as path from 'node:path';
import sharp from 'sharp';
import { fileURLToPath } from 'node:url';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const q = await import(path.join(ROOT, 'dist/index.js'));
const { buildCnnModel } = await import(path.join(ROOT, 'dist/fixtures/index.js'));
const N = Number(process.env.IMAGES ?? 256);
const dir = '/tmp/decx/imgs' + N;
if (!fs.existsSync(dir)) { fs.mkdirSync(dir, { recursive: true });
  const rng = new q.Rng(7); const w = 500, h = 375;
  for (let k = 0; k < N; k++) { const px = Buffer.alloc(w*h*3); const fx = 1+rng.int(6), fy = 1+rng.int(6);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const i=(y*w+x)*3; const n=rng.int(24);
      px[i]=(128+100*Math.sin((fx*x)/40+k))|0; px[i+1]=(128+100*Math.cos((fy*y)/30-k))&0xff; px[i+2]=((x+y+k*13)&0xff)^n; }
    await sharp(px,{raw:{width:w,height:h,channels:3}}).jpeg({quality:90}).toFile(path.join(dir,`img${String(k).padStart(4,'0')}.jpg`)); } }
const preprocess = q.parsePreprocess('resize=224x224,fit=cover,layout=nchw,channels=rgb,scale=1/255,mean=0.485,0.456,0.406,std=0.229,0.224,0.225');
const width = Number(process.env.WIDTH ?? 16);
const model = buildCnnModel({ size: 224, width, classes: 1000, name: `cnn224_w${width}` });
const ds = await q.openDataset(dir, model, { preprocess });
const B = 32;
const session = await q.Session.open(model);
const feeds = []; for await (const f of ds.batches(B)) feeds.push(f);
await session.run(feeds[0]);
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
async function m(f) { const c0 = cpu(), t0 = performance.now(); const extra = await f(); return { wall: performance.now() - t0, cpu: cpu() - c0, ...extra }; }
const res = { ort: [], dec: [], both: [] };
for (let rep = 0; rep < Number(process.env.REPS ?? 3); rep++) {
  res.ort.push(await m(async () => { for (const f of feeds) await session.run(f); }));
  res.dec.push(await m(async () => { for await (const _ of ds.batches(B)); }));
  res.both.push(await m(async () => { let wait = 0, run = 0, t = performance.now();
    for await (const f of ds.batches(B)) { const a = performance.now(); wait += a - t; await session.run(f); t = performance.now(); run += t - a; } return { wait, run }; }));
}
const med = (a, k) => a.map((x) => x[k]).sort((x, y) => x - y)[a.length >> 1];
const o = med(res.ort, 'wall'), d = med(res.dec, 'wall'), b = med(res.both, 'wall');
console.log(JSON.stringify({ tag: process.env.TAG, width, N, load: os.loadavg()[0].toFixed(1), ortWall: o.toFixed(0), decWall: d.toFixed(0), bothWall: b.toFixed(0), ratio: (b / o).toFixed(2), decOverOrt: (d / o).toFixed(2), hidden: ((o + d - b) / d).toFixed(2), ortCpu: med(res.ort,'cpu').toFixed(0), decCpu: med(res.dec,'cpu').toFixed(0), wait: med(res.both,'wait').toFixed(0), run: med(res.both,'run').toFixed(0) }));
await session.release();
