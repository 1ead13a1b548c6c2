// Scratch measurement (s4-calspeed): in-graph histogram (Mul/Floor/Sub/Clip/Cast + ScatterElements add, opset 17) vs ReduceMin/Max/SumSquare vs fetching the tensor, ns/value on 2^20 values. node bench/calib-ingraph-histogram.mjs
const R=new URL('../dist/', import.meta.url).href;
const o = await import(R+'onnx/index.js');
const { makeTensor } = await import(R+'tensor/index.js');
const ort = (await import('../node_modules/onnxruntime-node/dist/index.js')).default ?? await import('onnxruntime-node');
const N = 1<<20, B = 4096;
const init = (n,t)=>o.tensorToProto(n,t);
function model(nodes, outputs, inits, opset=17) {
  return o.encodeModel ? null : null;
}
const { toBinary } = await import('../node_modules/@bufbuild/protobuf/dist/esm/index.js');
const { ModelProtoSchema } = o;
function build(nodes, outs, inits) {
  const g = o.makeGraph({ name:'g', nodes, inputs:[o.makeValueInfo('x','float32',[N])], outputs: outs.map(n=>o.makeValueInfo(n[0], n[1])), initializers: inits });
  return toBinary(ModelProtoSchema, o.makeModel({ graph: g, opsets: { '': 17 } }));
}
const I = [init('inv', makeTensor('float32',[],Float32Array.of(64))), init('off', makeTensor('float32',[],Float32Array.of(-2048))),
  init('lo', makeTensor('float32',[],Float32Array.of(0))), init('hi', makeTensor('float32',[],Float32Array.of(B-1))),
  init('zeros', makeTensor('int64',[B],new BigInt64Array(B))), init('ones', makeTensor('int64',[N],new BigInt64Array(N).fill(1n))),
  init('zf', makeTensor('float32',[B],new Float32Array(B))), init('onesf', makeTensor('float32',[N],new Float32Array(N).fill(1))), init('ishape', makeTensor('int64',[1],BigInt64Array.of(BigInt(N))))];
const idx = [o.makeNode({opType:'Mul',inputs:['x','inv'],outputs:['a']}), o.makeNode({opType:'Floor',inputs:['a'],outputs:['b']}), o.makeNode({opType:'Sub',inputs:['b','off'],outputs:['c']}), o.makeNode({opType:'Clip',inputs:['c','lo','hi'],outputs:['d']}), o.makeNode({opType:'Cast',inputs:['d'],outputs:['i'],attrs:{to:7}})];
const V = {
  reducemax: build([o.makeNode({opType:'ReduceMax',inputs:['x'],outputs:['m'],attrs:{keepdims:0}})], [['m','float32']], []),
  minmaxss: build([o.makeNode({opType:'ReduceMax',inputs:['x'],outputs:['m'],attrs:{keepdims:0}}),o.makeNode({opType:'ReduceMin',inputs:['x'],outputs:['m2'],attrs:{keepdims:0}}),o.makeNode({opType:'ReduceSumSquare',inputs:['x'],outputs:['m3'],attrs:{keepdims:0}})], [['m','float32'],['m2','float32'],['m3','float32']], []),
  identity_fetch: build([o.makeNode({opType:'Identity',inputs:['x'],outputs:['y']})], [['y','float32']], []),
  idx_only: build([...idx, o.makeNode({opType:'ReduceMax',inputs:['i'],outputs:['m'],attrs:{keepdims:0}})], [['m','int64']], I),
  scatter_i64: build([...idx, o.makeNode({opType:'ScatterElements',inputs:['zeros','i','ones'],outputs:['h'],attrs:{reduction:'add', axis:0}})], [['h','int64']], I),
  scatter_f32: build([...idx, o.makeNode({opType:'ScatterElements',inputs:['zf','i','onesf'],outputs:['h'],attrs:{reduction:'add', axis:0}})], [['h','float32']], I),
};
const x = new Float32Array(N); for (let i=0;i<N;i++) x[i]=(Math.random()*2-1)*31;
const feeds = { x: new ort.Tensor('float32', x, [N]) };
const S = {}; for (const k in V) S[k] = await ort.InferenceSession.create(V[k], { intraOpNumThreads:1, interOpNumThreads:1, executionProviders:['cpu'], graphOptimizationLevel:'all' });
const T = Object.fromEntries(Object.keys(V).map(k=>[k,[]]));
for (let r=0;r<7;r++) for (const k in S) { const t0=performance.now(); for (let j=0;j<5;j++) await S[k].run(feeds); T[k].push((performance.now()-t0)/5); }
for (const k in T) { const m=[...T[k]].sort((a,b)=>a-b)[3]; console.log(k.padEnd(16), m.toFixed(2),'ms', (m*1e6/N).toFixed(2),'ns/value'); }
const h = (await S.scatter_i64.run(feeds)).h.data; let s=0n; for (const v of h) s+=v; console.log('sum',s);
{
  const y = new ort.Tensor('float32', new Float32Array(N), [N]);
  const s = S.identity_fetch; const TT=[];
  for (let r=0;r<7;r++){ const t0=performance.now(); for (let j=0;j<5;j++) await s.run(feeds, {y}); TT.push((performance.now()-t0)/5); }
  const m=[...TT].sort((a,b)=>a-b)[3]; console.log('identity_prealloc', m.toFixed(2),'ms', (m*1e6/N).toFixed(2),'ns/value', y.data[5]===x[5]);
  const T2=[]; for (let r=0;r<7;r++){ const t0=performance.now(); for (let j=0;j<5;j++) { const a=new Float32Array(N); a.set(x); } T2.push((performance.now()-t0)/5); }
  console.log('js alloc+copy', [...T2].sort((a,b)=>a-b)[3].toFixed(2));
  const z=new Float32Array(N); const T3=[]; for (let r=0;r<7;r++){ const t0=performance.now(); for (let j=0;j<5;j++) z.set(x); T3.push((performance.now()-t0)/5); }
  console.log('js copy', [...T3].sort((a,b)=>a-b)[3].toFixed(2));
}
