import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.js';
import { runInterruptHooks } from './interrupt.js';
import { endProgress, setDocumentStringifier, stopProgress, warn } from './output.js';
import { SUPERVISED_ENV, runsUnsupervised, superviseInChild } from './supervise.js';

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

  // Signals: taken here directly, and in a supervised command (see supervise.ts) also sent by the
  // supervisor over IPC. A second real Ctrl-C exits at once.
  let interrupted = false;
  const supervised = process.env[SUPERVISED_ENV] === '1' && typeof process.send === 'function';
  const stop = () => {
    interrupted = true;
    if (supervised && process.connected) process.send!({ type: 'ack' });
    // Say so at once (the line first, so the message does not land after a progress frame).
    stopProgress();
    process.stderr.write('qtool: stopping… (Ctrl-C again to quit at once)\n');
    // Commands with child processes stop them first (bounded wait), then our own temp files go.
    void runInterruptHooks(10_000)
      .then(() => import('../index.js'))
      .then(({ removePendingTempFiles }) => {
        removePendingTempFiles();
        // Supervised, the supervisor says "interrupted" (once, after we are gone).
        if (!supervised) process.stderr.write('qtool: interrupted\n');
        process.exit(130);
      });
  };
  const onSignal = () => (interrupted ? process.exit(130) : stop());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  if (supervised) {
    process.on('message', (m: { type?: string }) => {
      if (m?.type === 'interrupt' && !interrupted) stop();
      else if (m?.type === 'interrupt' && process.connected) process.send!({ type: 'ack' });
    });
    // The supervisor died (kill -9): stop as on Ctrl-C (child processes first, then temp files), so
    // nothing keeps running or writes an output later. The kernel closes the IPC channel; the parent
    // pid check covers a channel that stays open.
    const ppid = process.ppid;
    const orphaned = () => {
      if (!interrupted) stop();
    };
    process.on('disconnect', orphaned);
    setInterval(() => {
      if (process.ppid !== ppid) orphaned();
    }, 500).unref();
  }

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

const argv = process.argv.slice(2);
if (!runsUnsupervised(argv)) {
  superviseInChild(new URL(import.meta.url), argv);
} else {
  if (process.env[SUPERVISED_ENV] === '1' && typeof process.send === 'function') await startSupervisedSide();
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`qtool: internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/** In the supervised command process: report every temp path to the supervisor; sweep dead runs' temp files. */
async function startSupervisedSide(): Promise<void> {
  const { onTempFilesChange, sweepStaleTemp } = await import('../index.js');
  onTempFilesChange((op, file) => process.send!({ type: 'temp', op, file }));
  // Temp files of qtool runs that were killed (SIGKILL, power loss) in the system temp folder.
  sweepStaleTemp();
  // The IPC channel must not keep the process alive once the command is done.
  process.channel?.unref();
}
