import { expect } from 'vitest';
import { QtoolError } from '../../src/errors.js';

/** Runs `fn`, which must throw a QtoolError with a one-line message, and returns that error. */
export function caught(fn: () => unknown): QtoolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QtoolError);
    expect((err as Error).message.split('\n')).toHaveLength(1);
    return err as QtoolError;
  }
  throw new Error('expected a QtoolError');
}
