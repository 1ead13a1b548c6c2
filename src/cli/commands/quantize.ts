import type { Command } from 'commander';
import { QuantizeOptionsSchema, type QuantizeOptions } from '../../documents/index.js';
import { DATA_FLAGS, addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { endProgress, formatBytes, printJson, printText, startProgress, table, warn } from '../output.js';
import { phaseFrame } from '../progress.js';

/**
 * The flags of `qtool quantize`: each sets one field of QuantizeOptionsSchema (documents/quantize-options.ts),
 * whose `.describe()` and `.default()` are the help text and the default. A new option: add the field
 * there, one row here; `npx vitest run test/e2e/help.test.ts -u` updates the --help snapshot.
 */
export const QUANTIZE_FLAGS: readonly FlagSpec[] = [
  { flag: '--bits <n>', field: 'bits' },
  { flag: '--mode <mode>', field: 'mode' },
  { flag: '--data <path>', field: 'data', kind: 'string', note: "('random' for random inputs)" },
  { flag: '--calib <file>', field: 'calib' },
  { flag: '--method <name>', field: 'method' },
  { flag: '--samples <n>', field: 'samples' },
  { flag: '--batch-size <n>', field: 'batchSize' },
  { flag: '--plan <file>', field: 'plan' },
  { flag: '--activation-type <t>', field: 'activationType' },
  { flag: '--symmetric', field: 'symmetric' },
  { flag: '--block-size <n>', field: 'blockSize' },
  { flag: '--group-size <n>', field: 'groupSize' },
  { flag: '--int4-format <f>', field: 'int4Format', aliases: ['--format'] },
  { flag: '--accuracy-level <n>', field: 'accuracyLevel' },
  { flag: '--weight-clip <m>', field: 'weightClip' },
  { flag: '--algorithm <a>', field: 'algorithm' },
  { flag: '--no-act-order', field: 'actOrder', kind: 'negate' },
  { flag: '--dampening <x>', field: 'dampening' },
  { flag: '--bias-correction <m>', field: 'biasCorrection' },
  { flag: '--outlier-threshold <t>', field: 'outlierThreshold' },
  { flag: '--smooth <x|auto|off>', field: 'smooth', kind: 'string' },
  { flag: '--exclude-op <types>', field: 'excludeOps' },
  { flag: '--exclude-node <names>', field: 'excludeNodes' },
  { flag: '--include-node <names>', field: 'includeNodes' },
  { flag: '--no-fold', field: 'foldActivations', kind: 'negate' },
  { flag: '--integer-elementwise', field: 'integerElementwise' },
  { flag: '--no-fold-batch-norm', field: 'foldBatchNorm', kind: 'negate' },
  { flag: '--equalize <m>', field: 'equalize' },
  { flag: '--no-bench', field: 'bench', kind: 'negate' },
  { flag: '--compare-dynamic', field: 'compareDynamic' },
  { flag: '--tune-seconds <s>', field: 'tuneSeconds' },
  { flag: '--keep-slow-float', field: 'keepSlowFloat' },
  { flag: '--no-latency-cache', field: 'latencyCache', kind: 'negate' },
  { flag: '--save-plan <file>', field: 'savePlan' },
  { flag: '-o, --output <file>', field: 'output' },
  { flag: '--force', field: 'force' },
  { flag: '--external-data', field: 'externalData' },
  { flag: '--max-tensor-bytes <n>', field: 'maxTensorBytes' },
  { flag: '--fidelity-samples <n>', field: 'fidelitySamples' },
  { flag: '--min-tensor-sqnr <dB>', field: 'minTensorSqnrDb' },
  { flag: '--allow-unchanged', field: 'allowUnchanged' },
  { flag: '--max-drop <x>', field: 'maxDrop', number: { min: 0, percent: true }, note: "('1%' reads as 1); exit 4 if even keeping every layer higher misses it" },
  { flag: '--metric <m>', field: 'metric' },
  { flag: '--eval <path>', field: 'eval', kind: 'string' },
  { flag: '--eval-labels <file>', field: 'evalLabels', kind: 'string' },
  ...DATA_FLAGS,
];

interface CliFlags {
  asymmetric?: boolean;
  symmetric?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  addFlags(
    program
      .command('quantize')
      .description('write an INT8 (static QDQ or dynamic) or INT4 (MatMulNBits / blocked QDQ) model, checked in onnxruntime')
      .argument('<model>', 'ONNX model file'),
    QuantizeOptionsSchema,
    QUANTIZE_FLAGS,
  )
    .option('--asymmetric', 'asymmetric weights with zero points (the 4-bit default)')
    .option('--json', 'print one JSON document (qtool.quantize-summary/1) on stdout')
    .option('--quiet', 'no progress or notes on stderr')
    .action(async (modelPath: string, flags: CliFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      if (flags.symmetric && flags.asymmetric) throw new api.UsageError('E_OPTION_CONFLICT', '--symmetric and --asymmetric are alternatives: give one');
      const options: QuantizeOptions = { ...readFlags(flags, QuantizeOptionsSchema, QUANTIZE_FLAGS, flag), ...(flags.asymmetric ? { symmetric: false } : {}) };
      // --smooth takes a number (α) or a word; the flag table reads it as text.
      if (typeof options.smooth === 'string' && options.smooth !== 'auto' && options.smooth !== 'off') options.smooth = flag.number('--smooth', options.smooth, { min: 0 });
      const bar = startProgress(flags.quiet);
      const result = await api
        .quantize(modelPath, options, {
          onWarning: (w) => warn(`warning: ${w}`),
          onProgress: (e) => {
            // Counted stages get a frame; the others (rewrite, verify, save) pass too fast to draw.
            if (e.stage === 'search' && e.done === undefined && !flags.quiet) warn('note: uniform quantization missed --max-drop; searching for layers to keep at higher precision');
            if ((e.stage === 'calibrate' || e.stage === 'search') && e.done !== undefined && e.total !== undefined) bar.update(phaseFrame(e.stage, e.done, e.total, e.label));
          },
        })
        .finally(endProgress);
      const s = result.summary;
      const gateError = api.quantizeGateError(s, { allowUnchanged: options.allowUnchanged });
      // Warnings go to stderr first (random data was already shown before the work started).
      for (const w of s.warnings) if (!w.startsWith('--data random')) warn(`warning: ${w}`);
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
      const fused = api.fusedKernels(s.runtime.optimizedOps);
      lines.push('');
      lines.push(`onnxruntime loaded it; integer kernels: ${fused.length ? fused.map(([op, n]) => `${op} ${n}`).join(', ') : 'none'}`);
      if (s.latency) {
        const l = s.latency;
        const how = l.source === 'cache' ? 'from the latency cache' : l.source === 'plan' ? 'format from --plan' : `${l.rounds} interleaved rounds, ${l.seconds.toFixed(1)} s, load ${l.loadAverage.toFixed(1)}`;
        lines.push(`latency vs float at batch ${l.batchSizes.join(' / ')} (${how}):`);
        for (const c of l.candidates) if (c.label !== 'float') lines.push(`  ${c.label === l.chosen ? '*' : ' '} ${c.label}: ${c.ratios.map((r) => `${r.toFixed(2)}x`).join(' / ')}${c.label === l.chosen ? ' (written)' : ''}`);
      }
      if (s.fidelity) {
        lines.push('');
        lines.push(`fidelity on ${s.fidelity.samples} ${s.fidelity.isHeldOut ? 'held-out' : 'calibration (not held-out)'} samples:`);
        lines.push(
          table(
            ['output', 'cosine', 'SQNR dB', 'max |err|', 'argmax agree', 'sequences'],
            s.fidelity.outputs.map((o) => {
              const agree = o.positionAgreement ?? o.top1Agreement;
              const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
              return [o.name, o.cosine.toFixed(5), o.sqnrDb.toFixed(1), o.maxAbsError.toPrecision(3), `${pct(agree)}${o.positionAgreement !== undefined ? ' per position' : ''}`, pct(o.sequenceAgreement)];
            }),
          ),
        );
      }
      if (s.lowPrecision.length) {
        lines.push('');
        lines.push(table(['kept at higher precision', 'kind', 'expected SQNR', 'floor', 'why'], s.lowPrecision.map((t) => [t.tensor, t.kind, `${t.sqnrDb.toFixed(1)} dB${t.domain === 'log' ? ' (log domain)' : ''}`, `${t.floorDb} dB`, t.action])));
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
