// Hessian-trace probes on the tail of the probed weight (default) vs the whole weights-as-inputs model
// (QTOOL_HESSIAN_TAIL=0) vs the tail with the other weights kept as inputs (QTOOL_HESSIAN_TAIL=inputs), interleaved;
// prints CPU/wall and every layer's trace under each. Run after npm run build: node bench/hessian-tail.mjs [model data reps]
const q = await import(new URL('../dist/index.js', import.meta.url).href);
const model = process.argv[2] ?? 'fixtures/models/fmnist_cnn.onnx', data = process.argv[3] ?? 'fixtures/data/fmnist_calib_x.npy';
const reps = Number(process.argv[4] ?? 2);
const MODES=['full','inputs','tail']; const res = { full: [], inputs: [], tail: [] };
for (let r = 0; r < reps; r++) for (const mode of MODES) {
  process.env.QTOOL_HESSIAN_TAIL = {full:'0', inputs:'inputs', tail:'1'}[mode];
  const c0 = process.cpuUsage(); const t0 = performance.now();
  const s = await q.sensitivity(model, { data, probes: 32, samples: 64 });
  const c = process.cpuUsage(c0);
  res[mode].push({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000, hess: s.stats.ms.hessian, runs: s.stats.runs, rep: s.report });
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const m of MODES) console.log(m, 'wall', med(res[m].map(x => x.wall)).toFixed(0), 'cpu', med(res[m].map(x => x.cpu)).toFixed(0), 'hessian ms', med(res[m].map(x => x.hess)).toFixed(0), JSON.stringify(res[m][0].runs));
const a = res.full[0].rep.layers, b = res.tail[0].rep.layers;
let maxRel = 0, same = 0;
for (let i = 0; i < a.length; i++) {
  const ha = a[i].hessian, hb = b[i].hessian;
  const rel = Math.abs(ha.trace - hb.trace) / Math.abs(ha.trace);
  maxRel = Math.max(maxRel, rel); if (ha.trace === hb.trace) same++;
  console.log(a[i].id.slice(-28).padEnd(28), ha.trace.toExponential(6), hb.trace.toExponential(6), 'probes', ha.probes, hb.probes, 'stderr', ha.stderr.toExponential(2), 'rel', rel.toExponential(2));
}
console.log('identical traces', same, '/', a.length, 'max rel diff', maxRel.toExponential(2));
const strip = (r) => JSON.stringify({ ...r, runs: undefined, layers: r.layers.map((l) => ({ ...l, hessian: undefined, bits: l.bits.map(b => ({ ...b, omega: undefined })), score: undefined })) });
console.log('rest of report identical:', strip(res.full[0].rep) === strip(res.tail[0].rep));
