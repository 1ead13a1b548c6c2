// Scratch measurement (s4-calspeed): run-only CPU of the plan-tensor reductions and fetches at each ORT optimization level vs a plain pass. node bench/calib-fetch-variants.mjs MODEL DATA BATCH REPS
const R=new URL('../dist/', import.meta.url).href;
const q = await import(R+'index.js');
const aug = await import(R+'calibrate/augment.js');
const { Session } = await import(R+'runtime/index.js');
const [file, dataFile, bs] = [process.argv[2], process.argv[3], Number(process.argv[4]??32)];
const model = q.loadModel(file);
const ds = await q.openDataset(dataFile, model, {});
const batches = []; for await (const f of ds.batches(bs)) batches.push(f);
const plan = q.planCalibrationTensors(model, q.uniformPlan({ bits: 8, mode: 'static' }));
const inputs = new Set(ds.inputs.map(i=>i.name));
const fetches = plan.filter(t=>!inputs.has(t));
const red = aug.withReductions(model, fetches);
const ro = red.outputs; const rf=[ro.count,ro.min,ro.max,ro.sumSquares];
const variants = {
  plain: [model, 'all', undefined],
  'reduce/all': [red.model, 'all', rf],
  'reduce/disabled': [red.model, 'disabled', rf],
  'reduce/basic': [red.model, 'basic', rf],
  'reduce/extended': [red.model, 'extended', rf],
  'fetch/all': [aug.withOutputs(model, fetches), 'all', fetches],
  'fetch/basic': [aug.withOutputs(model, fetches), 'basic', fetches],
};
const sessions = {};
for (const [k,[m,opt]] of Object.entries(variants)) sessions[k] = await Session.open(m, {optimization: opt});
const times = Object.fromEntries(Object.keys(variants).map(k=>[k,[]]));
for (let rep=0; rep<Number(process.argv[5]??5); rep++) for (const [k,[,,f]] of Object.entries(variants)) {
  const c0=process.cpuUsage();
  for (const b of batches) await sessions[k].run(b, f);
  const c=process.cpuUsage(c0); times[k].push((c.user+c.system)/1000);
}
const med = a=>[...a].sort((x,y)=>x-y)[a.length>>1];
const p = med(times.plain);
for (const k of Object.keys(times)) console.log(k.padEnd(20), med(times[k]).toFixed(1), (med(times[k])/p).toFixed(2)+'x');
