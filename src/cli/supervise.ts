/**
 * Ctrl-C that always works. A command runs in a child process (same node, same argv, stdio inherited);
 * this process only waits, so it takes SIGINT/SIGTERM/SIGHUP at once even while the command is deep in
 * synchronous work (protobuf decode of a 400 MB model, onnxruntime session creation, a multi-GB save).
 * On a signal it asks the child to stop (the child's handler stops its own child processes, removes its
 * temp files and exits 130). A child that does not acknowledge within ACK_MS is stuck in synchronous
 * code: it is killed, and this process removes every temp file the child registered (the child reports
 * each one over IPC as it is created) and exits itself. Outputs are renamed into place complete, so
 * none is ever half-written; a temp file that a killed child created after its last report carries the
 * child's pid and is swept by the next run.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** How long a busy child may take to acknowledge an interrupt before it is killed. */
export const ACK_MS = 300;

/** Set in the child's environment: it reports temp files over IPC and leaves "interrupted" to us. */
export const SUPERVISED_ENV = 'QTOOL_SUPERVISED';

export type ChildMessage = { type: 'temp'; op: 'add' | 'delete'; file: string } | { type: 'ack' };

/** Arguments this process handles itself: help, version, nothing. They never load the library. */
export function runsUnsupervised(argv: readonly string[]): boolean {
  if (process.env.QTOOL_NO_SUPERVISOR === '1' || process.env[SUPERVISED_ENV] === '1') return true;
  return argv.length === 0 || argv[0] === 'help' || argv.some((a) => a === '--help' || a === '-h' || a === '--version' || a === '-V');
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export function superviseInChild(entry: URL, argv: readonly string[]): void {
  const temps = new Set<string>();
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(entry), ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [SUPERVISED_ENV]: '1' },
  });
  let signal: string | undefined;
  let acked = false;
  const removeTemps = () => {
    for (const f of temps) {
      try {
        fs.rmSync(f, { recursive: true, force: true });
      } catch {
        // swept by a later run (the pid is in the name)
      }
    }
    temps.clear();
  };
  const exitInterrupted = () => {
    removeTemps();
    process.stderr.write('qtool: interrupted\n');
    process.exit(SIGNAL_EXIT[signal ?? 'SIGINT'] ?? 130);
  };
  child.on('message', (m: ChildMessage) => {
    if (m.type === 'temp') {
      if (m.op === 'add') temps.add(m.file);
      else temps.delete(m.file);
    } else if (m.type === 'ack') acked = true;
  });
  child.on('error', (err) => {
    process.stderr.write(`qtool: internal error: cannot start the command process (${err.message}) (please report this at the qtool issue tracker)\n`);
    process.exitCode = 1;
  });
  child.on('exit', (code, sig) => {
    if (signal) exitInterrupted();
    removeTemps();
    process.exitCode = code ?? (sig ? 128 + (({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 }) as Record<string, number>)[sig] || 1 : 1);
  });
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal) {
      // A second Ctrl-C: at once.
      child.kill('SIGKILL');
      exitInterrupted();
    }
    signal = sig;
    if (child.connected) child.send({ type: 'interrupt' }, () => {});
    setTimeout(() => {
      if (acked) return;
      child.kill('SIGKILL');
      exitInterrupted();
    }, ACK_MS).unref();
  };
  for (const sig of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.on(sig, onSignal);
}
