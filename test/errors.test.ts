import { describe, expect, it } from 'vitest';
import {
  BatchError,
  EXIT_CODES,
  GateError,
  InputError,
  InternalError,
  ModelError,
  OrtError,
  QtoolError,
  UsageError,
  check,
  toQtoolError,
} from '../src/errors.js';

describe('errors', () => {
  it('maps every class to its documented exit code', () => {
    const cases: [QtoolError, number, string][] = [
      [new UsageError('E_FLAG', 'bad flag'), 2, 'UsageError'],
      [new InputError('E_READ', 'no such file'), 3, 'InputError'],
      [new ModelError('E_OPSET', 'opset 5'), 3, 'ModelError'],
      [new GateError('E_BUDGET_NOT_MET', 'drop 2%'), 4, 'GateError'],
      [new OrtError('E_ORT_LOAD', 'refused'), 5, 'OrtError'],
      [new BatchError('E_BATCH_PARTIAL', '1 of 3 failed'), 6, 'BatchError'],
      [new InternalError('broken'), 1, 'InternalError'],
    ];
    for (const [e, exit, name] of cases) {
      expect(e).toBeInstanceOf(QtoolError);
      expect(e).toBeInstanceOf(Error);
      expect(e.exitCode).toBe(exit);
      expect(e.name).toBe(name);
    }
    expect(new ModelError('E_OPSET', 'x')).toBeInstanceOf(InputError);
    expect(EXIT_CODES).toEqual({ ok: 0, internal: 1, usage: 2, input: 3, gate: 4, runtime: 5, batch: 6, interrupted: 130 });
  });

  it('prefixes the message with the file and keeps code, hint and cause', () => {
    const cause = new Error('ENOENT');
    const e = new InputError('E_READ', 'no such file', { file: 'a/b.onnx', hint: 'check the path', cause });
    expect(e.message).toBe('a/b.onnx: no such file');
    expect(e.code).toBe('E_READ');
    expect(e.file).toBe('a/b.onnx');
    expect(e.hint).toBe('check the path');
    expect(e.cause).toBe(cause);
    expect(new UsageError('E_FLAG', 'unknown flag --x').message).toBe('unknown flag --x');
  });

  it('wraps foreign errors as InternalError and passes QtoolErrors through', () => {
    const q = new GateError('E_FAIL_OVER', 'x');
    expect(toQtoolError(q)).toBe(q);
    const w = toQtoolError(new TypeError('undefined is not a function'));
    expect(w).toBeInstanceOf(InternalError);
    expect(w.code).toBe('E_INTERNAL');
    expect(w.exitCode).toBe(1);
    expect(w.message).toBe('undefined is not a function');
    expect(toQtoolError('plain string').message).toBe('plain string');
  });

  it('check() throws the lazily built error only when the condition fails', () => {
    let built = 0;
    const make = () => {
      built++;
      return new ModelError('E_X', 'bad');
    };
    expect(() => check(true, make)).not.toThrow();
    expect(built).toBe(0);
    expect(() => check(0, make)).toThrow(ModelError);
    expect(built).toBe(1);
  });
});
