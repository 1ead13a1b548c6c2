/**
 * Running one unit of work in its own Node child process (bench measurements, batch jobs) with a
 * JSON request/response over the IPC channel. A crash, an abort or an out-of-memory kill in the
 * child becomes a typed error in the parent; nothing the child does can take the parent down.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EXIT_CODES, GateError, InputError, InternalError, OrtError, QtoolError, UsageError, BatchError, toQtoolError } from '../errors.js';
import { compiledScript } from '../files.js';
import { exitWithParent } from './child-watch.js';

interface ErrorPayload {
  code: string;
  message: string;
  exitCode: number;
  hint?: string;
}

type Response<T> = { ok: true; result: T } | { ok: false; error: ErrorPayload };
/** A message the child sends while it works (progress); the final message is a Response. */
interface EventMessage {
  event: unknown;
}
const isEvent = (m: unknown): m is EventMessage => typeof m === 'object' && m !== null && 'event' in m;

/** Path of a compiled child entry script next to this module (from dist/ even when running sources). */
export function childScript(name: string): string {
  return compiledScript(import.meta.url, name);
}

/** The error a process gets when it was interrupted (exit 130). */
export function interruptedError(): QtoolError {
  return new QtoolError('E_INTERRUPTED', 'interrupted', EXIT_CODES.interrupted);
}

export interface ChildRun<T> {
  readonly pid: number | undefined;
  readonly result: Promise<T>;
  kill(): void;
}

/**
 * Fork `script`, send it `request`, and resolve with its result. The child's errors come back as
 * the same QtoolError subclass (by exit code); a child that dies without answering gives
 * E_CHILD_CRASHED with the last line of its stderr. `signal` kills the child (SIGKILL) at once.
 */
export function runChild<T>(script: string, request: unknown, opts: { signal?: AbortSignal; name?: string; onEvent?: (event: unknown) => void } = {}): ChildRun<T> {
  const child: ChildProcess = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
  let stderrTail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    stderrTail = (stderrTail + s).slice(-4000);
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const result = new Promise<T>((resolve, reject) => {
    let response: Response<T> | undefined;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      kill();
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m) => {
      if (isEvent(m)) opts.onEvent?.(m.event);
      else response = m as Response<T>;
    });
    child.on('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new InternalError(`could not start a child process: ${err.message}`, { cause: err }));
    });
    child.on('exit', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (aborted) return reject(interruptedError());
      if (response?.ok) return resolve(response.result);
      if (response && !response.ok) return reject(fromPayload(response.error));
      const last = stderrTail.trim().split('\n').filter(Boolean).pop() ?? '';
      const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
      reject(new QtoolError('E_CHILD_CRASHED', `${opts.name ? `${opts.name}: ` : ''}the child process ${how} without a result${last ? ` (${last.slice(0, 300)})` : ''}`, EXIT_CODES.internal));
    });
    child.send(request as object);
  });
  return { pid: child.pid, result, kill };
}

function fromPayload(e: ErrorPayload): QtoolError {
  switch (e.exitCode) {
    case EXIT_CODES.usage:
      return new UsageError(e.code, e.message, { hint: e.hint });
    case EXIT_CODES.input:
      return new InputError(e.code, e.message, { hint: e.hint });
    case EXIT_CODES.gate:
      return new GateError(e.code, e.message, { hint: e.hint });
    case EXIT_CODES.runtime:
      return new OrtError(e.code, e.message, { hint: e.hint });
    case EXIT_CODES.batch:
      return new BatchError(e.code, e.message, { hint: e.hint });
    default:
      return new QtoolError(e.code, e.message, e.exitCode, { hint: e.hint });
  }
}

/**
 * The child side: wait for one request, run `handler`, send the result or the error back, exit.
 * `emit(event)` sends an event (progress) to the parent's `onEvent` while the handler runs.
 * Only child entry scripts (bench-child, batch-child) call this.
 */
export function serveChild<Req, Res>(handler: (request: Req, emit: (event: unknown) => void) => Promise<Res>): void {
  // An orphan (parent killed with -9) exits at once instead of finishing its work.
  const stopWatch = exitWithParent();
  const emit = (event: unknown) => {
    if (process.connected) process.send!({ event } satisfies EventMessage);
  };
  process.once('message', (request) => {
    void (async () => {
      let response: Response<Res>;
      try {
        response = { ok: true, result: await handler(request as Req, emit) };
      } catch (err) {
        const e = toQtoolError(err);
        response = { ok: false, error: { code: e.code, message: e.message, exitCode: e.exitCode, hint: e.hint } };
      }
      process.send!(response, () => {
        stopWatch();
        process.disconnect();
        process.exit(0);
      });
    })();
  });
}
