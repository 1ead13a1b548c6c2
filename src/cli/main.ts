import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.js';
import { runInterruptHooks } from './interrupt.js';
import { endProgress, setDocumentStringifier, stopProgress, warn } from './output.js';

const VERSION = '0.1.0';

async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const program = new Command();
  program
    .name('qtool')
    .description('Post-training quantization of ONNX models (INT8/INT4) through onnxruntime-node')
    .version(VERSION)
    .option('--verbose', 'print stack traces for errors')
    // Options after a command belong to it (`batch merge --json` is merge's --json, not batch's).
    .enablePositionalOptions()
    .showHelpAfterError("(run 'qtool <command> --help' for the options)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  // The library is loaded only when a command really runs, never for --help or usage errors.
  program.hook('preAction', async (_program, action) => {
    const { stringifyDocument, RANDOM_DATA_WARNING } = await import('../index.js');
    setDocumentStringifier(stringifyDocument);
    // Random inputs say nothing about real data: every command says so before it starts (quantize
    // through its own onWarning, which also lists it in --json warnings).
    const o = action.opts() as Record<string, unknown>;
    const random = ['data', 'eval'].filter((k) => o[k] === 'random').map((k) => `--${k}`);
    if (random.length && action.name() !== 'quantize') warn(`warning: ${random.join(', ')} random: ${RANDOM_DATA_WARNING}`);
  });
  for (const register of COMMANDS) register(program);
  for (const cmd of program.commands) cmd.exitOverride().option('--verbose', 'print stack traces for errors');

  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    // Say so at once (the line first, so the message does not land after a progress frame).
    stopProgress();
    process.stderr.write('qtool: stopping… (Ctrl-C again to quit at once)\n');
    // Commands with child processes stop them first (bounded wait), then our own temp files go.
    void runInterruptHooks(10_000)
      .then(() => import('../index.js'))
      .then(({ removePendingTempFiles }) => {
        removePendingTempFiles();
        process.stderr.write('qtool: interrupted\n');
        process.exit(130);
      });
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, --version and `help` exit 0; help shown because no command was given is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      return 2;
    }
    endProgress();
    const { toQtoolError } = await import('../index.js');
    const e = toQtoolError(err);
    // The SIGINT handler says "interrupted" and exits 130 itself.
    if (e.code === 'E_INTERRUPTED') return e.exitCode;
    const msg = e.code === 'E_INTERNAL' ? `internal error: ${e.message} (please report this at the qtool issue tracker)` : e.message;
    process.stderr.write(`qtool: error ${e.code}: ${msg}\n`);
    if (e.hint) process.stderr.write(`qtool: hint: ${e.hint}\n`);
    if (verbose) {
      process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
      if (e.cause instanceof Error && e.cause !== err) process.stderr.write(`caused by: ${e.cause.stack}\n`);
    }
    return e.exitCode;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`qtool: internal error: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
