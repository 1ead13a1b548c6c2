import type { Command } from 'commander';
import { collectList, flagParser } from '../flags.js';
import { formatBytes, printJson, printText, progressBar, table, warn } from '../output.js';

interface QuantizeFlags {
  bits?: string;
  mode?: string;
  data?: string;
  calib?: string;
  method?: string;
  samples?: string;
  batchSize?: string;
  plan?: string;
  activationType?: string;
  symmetric?: boolean;
  asymmetric?: boolean;
  blockSize?: string;
  groupSize?: string;
  format?: string;
  accuracyLevel?: string;
  weightClip?: string;
  excludeOp: string[];
  excludeNode: string[];
  includeNode: string[];
  noFold?: boolean;
  fold?: boolean;
  output?: string;
  force?: boolean;
  externalData?: boolean;
  fidelitySamples?: string;
  maxDrop?: string;
  metric?: string;
  eval?: string;
  evalLabels?: string;
  json?: boolean;
  quiet?: boolean;
}


/** Defaults are those of QuantizeOptionsSchema (documents/quantize-options.ts); help text repeats them. */
export function register(program: Command): void {
  program
    .command('quantize')
    .description('write an INT8 (static QDQ or dynamic) or INT4 (MatMulNBits / blocked QDQ) model, checked in onnxruntime')
    .argument('<model>', 'ONNX model file')
    .option('--bits <n>', 'weight bits: 8 or 4 (default 8)')
    .option('--mode <mode>', 'auto | static | dynamic | weight-only (default auto: static with --data/--calib, dynamic without, weight-only for 4 bits)')
    .option('--data <path>', "calibration data (.npy, .npz, folder, .jsonl or 'random'); also used for the fidelity check")
    .option('--calib <file>', 'calibration table (qtool.calibration/1) instead of --data')
    .option('--method <name>', 'calibration method with --data: minmax | percentile | entropy | mse (default minmax)')
    .option('--samples <n>', 'at most this many calibration samples (default 256)')
    .option('--batch-size <n>', 'calibration batch size (default 32)')
    .option('--plan <file>', 'mixed-precision plan (qtool.plan/1): bits per layer')
    .option('--activation-type <t>', 'static activations: uint8 (asymmetric) or int8 (symmetric) (default uint8)')
    .option('--symmetric', 'symmetric weights (default for 8 bits)')
    .option('--asymmetric', 'asymmetric weights with zero points (default for 4 bits)')
    .option('--block-size <n>', 'INT4 block size along the reduction axis: 16, 32, 64, 128 (default 32)')
    .option('--group-size <n>', '8-bit MatMul/Gemm weights in groups of n (8-bit MatMulNBits)')
    .option('--format <f>', 'INT4 form: nbits (com.microsoft MatMulNBits) or qdq (opset-21 DequantizeLinear) (default nbits)')
    .option('--accuracy-level <n>', 'MatMulNBits accuracy_level 0-4 (default 4: int8 compute)')
    .option('--weight-clip <m>', 'none | mse: per-channel/per-block clip search (default none)')
    .option('--exclude-op <types>', 'keep these op types float (comma-separated, repeatable)', collectList, [])
    .option('--exclude-node <names>', 'keep these nodes float (names or layer ids; comma-separated, repeatable)', collectList, [])
    .option('--include-node <names>', 'quantize only these nodes (comma-separated, repeatable)', collectList, [])
    .option('--no-fold', 'keep Relu/Clip nodes instead of absorbing them into the quantized range')
    .option('-o, --output <file>', 'output model (default: <model>.int8.onnx / <model>.int4.onnx next to the input)')
    .option('--force', 'overwrite an existing output file')
    .option('--external-data', 'store tensors in <output>.data next to the output')
    .option('--fidelity-samples <n>', 'samples for the float vs quantized check when --data is given (default 64, 0 skips)')
    .option('--max-drop <x>', 'accuracy guarantee: allowed drop vs float (points for accuracy/agreement, percent relative for cosine/sqnr); keeps the fewest most sensitive layers at higher precision (float, or 8-bit at --bits 4) until it holds; exit 4 if even that fails')
    .option('--metric <m>', 'metric of --max-drop: accuracy | agreement | cosine | sqnr (default accuracy with --eval-labels, else cosine; sqnr only with --bits 4)')
    .option('--eval <path>', 'evaluation data for --max-drop (default: the last 25% of --data, at least 4 samples, held out of calibration)')
    .option('--eval-labels <file>', 'labels (.npy int) of the evaluation data (of --data when it is held out)')
    .option('--json', 'print one JSON document (qtool.quantize-summary/1) on stdout')
    .option('--quiet', 'no progress or notes on stderr')
    .action(async (modelPath: string, flags: QuantizeFlags) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      if (flags.symmetric && flags.asymmetric) throw new api.UsageError('E_OPTION_CONFLICT', '--symmetric and --asymmetric are alternatives: give one');
      const options = api.parseQuantizeOptions({
        bits: flag.number('--bits', flags.bits) as 4 | 8 | undefined,
        mode: flags.mode as never,
        data: flags.data,
        calib: flags.calib,
        method: flags.method as never,
        samples: flag.number('--samples', flags.samples),
        batchSize: flag.number('--batch-size', flags.batchSize),
        plan: flags.plan,
        activationType: flags.activationType as never,
        symmetric: flags.symmetric ? true : flags.asymmetric ? false : undefined,
        blockSize: flag.number('--block-size', flags.blockSize) as never,
        groupSize: flag.number('--group-size', flags.groupSize) as never,
        format: flags.format as never,
        accuracyLevel: flag.number('--accuracy-level', flags.accuracyLevel) as never,
        weightClip: flags.weightClip as never,
        excludeOps: flags.excludeOp,
        excludeNodes: flags.excludeNode,
        includeNodes: flags.includeNode,
        foldActivations: flags.fold !== false,
        output: flags.output,
        force: flags.force,
        externalData: flags.externalData,
        fidelitySamples: flag.number('--fidelity-samples', flags.fidelitySamples),
        maxDrop: flag.number('--max-drop', flags.maxDrop, { min: 0, percent: true }),
        metric: flag.oneOf('--metric', flags.metric, ['accuracy', 'agreement', 'cosine', 'sqnr'] as const),
        eval: flags.eval,
        evalLabels: flags.evalLabels,
      });
      let bar = progressBar('calibrating', flags.quiet);
      const result = await api.quantize(modelPath, options, {
        onProgress: (e) => {
          if (e.stage === 'search' && e.done === undefined) {
            bar.done();
            bar = progressBar('searching (uniform missed --max-drop)', flags.quiet);
          }
          if ((e.stage === 'calibrate' || e.stage === 'search') && e.done !== undefined && e.total !== undefined) bar.update(e.done, e.total);
        },
      });
      bar.done();
      const s = result.summary;
      const gateError = api.quantizeGateError(s);
      if (flags.json) {
        printJson(s);
        if (gateError) throw gateError;
        return;
      }
      if (!flags.quiet) for (const n of s.notes) warn(`note: ${n}`);
      const lines: string[] = [];
      lines.push(`${s.output.file}: ${s.mode} ${s.bits}-bit, ${formatBytes(s.input.sizeBytes)} → ${formatBytes(s.output.sizeBytes)} (${s.sizeRatio.toFixed(3)}x)`);
      lines.push('');
      lines.push(table(['op', 'int8', 'int4', 'float'], Object.entries(s.byOpType).map(([op, c]) => [op, String(c.int8), String(c.int4), String(c.float)])));
      const floats = s.layers.filter((l) => l.reason);
      if (floats.length) {
        lines.push('');
        lines.push(table(['layer', 'op', 'as', 'why'], floats.map((l) => [l.id, l.opType, l.bits === 'float' ? 'float' : `${l.bits}-bit ${l.scheme}`, l.reason ?? ''])));
      }
      const fused = Object.entries(s.runtime.optimizedOps).filter(([op]) => /^(QLinear|QGemm|MatMulNBits|DynamicQuantize|MatMulIntegerToFloat)/.test(op));
      lines.push('');
      lines.push(`onnxruntime loaded it; integer kernels: ${fused.length ? fused.map(([op, n]) => `${op} ${n}`).join(', ') : 'none'}`);
      if (s.fidelity) {
        lines.push('');
        lines.push(`fidelity on ${s.fidelity.samples} samples:`);
        lines.push(
          table(
            ['output', 'cosine', 'SQNR dB', 'max |err|', 'top-1 agree'],
            s.fidelity.outputs.map((o) => [o.name, o.cosine.toFixed(5), o.sqnrDb.toFixed(1), o.maxAbsError.toPrecision(3), o.top1Agreement === undefined ? '-' : `${(100 * o.top1Agreement).toFixed(1)}%`]),
          ),
        );
      }
      if (s.budget) lines.push('', ...budgetLines(s.budget));
      printText(lines.join('\n'));
      if (gateError) throw gateError;
    });
}

type Budget = NonNullable<import('../../index.js').QuantizeSummary['budget']>;

function budgetLines(b: Budget): string[] {
  const fmt = (r: Budget['uniform']) => `${b.metric} ${b.metric === 'sqnr' ? r.value.toFixed(2) : r.value.toFixed(b.metric === 'cosine' ? 5 : 4)} (drop ${r.drop.toPrecision(3)} ${b.dropUnit}, ${r.passes ? 'within' : 'over'} ${b.maxDrop})`;
  const lines = [`--max-drop ${b.maxDrop} ${b.dropUnit} on ${b.eval.samples} samples of ${b.eval.source}${b.eval.isHeldOut ? ' (the held-out tail of --data)' : ''}, reference ${b.reference.label} ${b.reference.value.toFixed(4)}:`];
  lines.push(`  uniform: ${fmt(b.uniform)}`);
  if (b.isSearched) lines.push(`  written: ${fmt(b.final)} with ${b.kept.length} layer(s) kept at ${b.levels[0]}, ${b.evaluations} evaluations`);
  else lines.push(`  written: the uniform model (${b.evaluations} evaluation${b.evaluations === 1 ? '' : 's'}, no search)`);
  if (b.kept.length) lines.push(table(['kept layer', 'op', 'as', 'why'], b.kept.map((k) => [k.id, k.opType, String(k.bits), k.reason])));
  if (!b.budgetMet) lines.push(`budget NOT met: ${b.notes[b.notes.length - 1] ?? ''}`);
  return lines;
}
