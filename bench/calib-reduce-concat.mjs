// Scratch measurement (s4-calspeed): open + all runs of reduction graphs with 4 Concats (current), none, or fewer. node bench/calib-reduce-concat.mjs MODEL DATA BATCH
const R=new URL('../dist/', import.meta.url).href;
const q = await import(R+'index.js');
const aug = await import(R+'calibrate/augment.js');
const o = await import(R+'onnx/index.js');
const { create } = await import('../node_modules/@bufbuild/protobuf/dist/esm/index.js');
const { Session } = await import(R+'runtime/index.js');
const m = q.loadModel(process.argv[2]);
const ds = await q.openDataset(process.argv[3], m, {});
const batches = []; for await (const f of ds.batches(Number(process.argv[4]))) batches.push(f);
const plan = q.planCalibrationTensors(m, q.uniformPlan({ bits: 8, mode: 'static' })).slice(1);
function variant(kind) {
  const g = m.proto.graph; const nodes=[...g.node]; const outs=[]; const inits=[...g.initializer];
  inits.push(o.tensorToProto('qflat', q.makeTensor('int64',[1],BigInt64Array.of(-1n))));
  const parts = {Shape:[], f:[]};
  plan.forEach((t)=>{ const x=`${t}_f`; nodes.push(o.makeNode({opType:'Reshape',inputs:[t,'qflat'],outputs:[x]}));
    for (const s of ['Shape','ReduceMin','ReduceMax','ReduceSumSquare']) { const out=`${t}_${s}`; nodes.push(o.makeNode({opType:s,inputs:[x],outputs:[out],attrs: s==='Shape'?undefined:{keepdims: 1}})); (s==='Shape'?parts.Shape:parts.f).push(out); }});
  if (kind==='noconcat') outs.push(...parts.Shape, ...parts.f);
  else if (kind==='concat2') { nodes.push(o.makeNode({opType:'Concat',inputs:parts.f,outputs:['qf'],attrs:{axis:0}})); nodes.push(o.makeNode({opType:'Concat',inputs:parts.Shape,outputs:['qs'],attrs:{axis:0}})); outs.push('qf','qs'); }
  else if (kind==='concat1f') { nodes.push(o.makeNode({opType:'Concat',inputs:parts.f,outputs:['qf'],attrs:{axis:0}})); outs.push('qf', ...parts.Shape); }
  return { model: { ...m, proto: { ...m.proto, graph: { ...g, node: nodes, output: [...g.output, ...outs.map(name=>create(o.ValueInfoProtoSchema,{name}))], initializer: inits } } }, fetch: outs };
}
const red = aug.withReductions(m, plan);
const V = { plain: { model: m, fetch: undefined }, current: { model: red.model, fetch: [red.outputs.count, red.outputs.min, red.outputs.max, red.outputs.sumSquares] }, noconcat: variant('noconcat'), concat2: variant('concat2'), concat1f: variant('concat1f') };
const T = Object.fromEntries(Object.keys(V).map(k=>[k,[]]));
for (let r=0;r<5;r++) for (const k in V) { const c0=process.cpuUsage(); const s=await Session.open(V[k].model); for (const b of batches) await s.run(b, V[k].fetch); await s.release(); const c=process.cpuUsage(c0); T[k].push((c.user+c.system)/1000); }
const med=a=>[...a].sort((a,b)=>a-b)[2];
for (const k in T) console.log(k.padEnd(12), med(T[k]).toFixed(1), (med(T[k])/med(T.plain)).toFixed(2)+'x');
