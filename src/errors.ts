/**
 * Typed errors with stable codes. Every error qtool raises on purpose is a QtoolError;
 * the CLI maps `exitCode` to the process exit status (see EXIT_CODES and README).
 */

export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  input: 3,
  gate: 4,
  runtime: 5,
  batch: 6,
  interrupted: 130,
} as const;

export interface QtoolErrorOptions {
  file?: string;
  hint?: string;
  cause?: unknown;
}

export class QtoolError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly file?: string;
  readonly hint?: string;
  override readonly cause?: unknown;

  constructor(code: string, message: string, exitCode: number, opts: QtoolErrorOptions = {}) {
    super(opts.file ? `${opts.file}: ${message}` : message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.file = opts.file;
    this.hint = opts.hint;
    this.cause = opts.cause;
  }
}

/** Bad flags or option combinations. */
export class UsageError extends QtoolError {
  constructor(code: string, message: string, opts?: QtoolErrorOptions) {
    super(code, message, EXIT_CODES.usage, opts);
  }
}

/** A file the user gave is missing, corrupt or invalid. */
export class InputError extends QtoolError {
  constructor(code: string, message: string, opts?: QtoolErrorOptions) {
    super(code, message, EXIT_CODES.input, opts);
  }
}

/** A valid model that qtool cannot handle as asked. */
export class ModelError extends InputError {}

/** Outputs were written, but a requested threshold failed (CI gates). */
export class GateError extends QtoolError {
  constructor(code: string, message: string, opts?: QtoolErrorOptions) {
    super(code, message, EXIT_CODES.gate, opts);
  }
}

/** onnxruntime refused a model or a run. */
export class OrtError extends QtoolError {
  constructor(code: string, message: string, opts?: QtoolErrorOptions) {
    super(code, message, EXIT_CODES.runtime, opts);
  }
}

/** Some batch jobs failed. */
export class BatchError extends QtoolError {
  constructor(code: string, message: string, opts?: QtoolErrorOptions) {
    super(code, message, EXIT_CODES.batch, opts);
  }
}

/** A broken invariant: a qtool bug. */
export class InternalError extends QtoolError {
  constructor(message: string, opts?: QtoolErrorOptions) {
    super('E_INTERNAL', message, EXIT_CODES.internal, opts);
  }
}

/** Wrap anything thrown into a QtoolError (non-QtoolErrors become InternalError). */
export function toQtoolError(err: unknown): QtoolError {
  if (err instanceof QtoolError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}

/** Hot-path check with a lazily built message. */
export function check(cond: unknown, error: () => QtoolError): asserts cond {
  if (!cond) throw error();
}
