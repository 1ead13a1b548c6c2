import type { UsageError } from '../index.js';

type UsageErrorClass = new (code: string, message: string) => UsageError;

export interface NumberFlagOptions {
  /** Whole numbers only. */
  int?: boolean;
  /** Smallest accepted value (default: 1 with `int`, none otherwise). */
  min?: number;
  /** Accept a trailing '%' ("1%" reads as 1). */
  percent?: boolean;
}

/**
 * Flag parsing shared by every command. Takes the UsageError class from the lazily imported
 * library so that `--help` never loads it.
 */
export function flagParser(Usage: UsageErrorClass) {
  return {
    /** A numeric flag, or undefined when absent; anything else is a UsageError (exit 2). */
    number(flag: string, value: string | undefined, opts: NumberFlagOptions = {}): number | undefined {
      if (value === undefined) return undefined;
      const text = opts.percent ? value.trim().replace(/%$/, '') : value.trim();
      const n = Number(text);
      const min = opts.min ?? (opts.int ? 1 : -Infinity);
      const what = opts.int ? (min === 1 ? 'a positive integer' : `an integer ≥ ${min}`) : min === -Infinity ? 'a number' : `a number ≥ ${min}`;
      if (text === '' || !Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || n < min) {
        throw new Usage('E_FLAG', `${flag}: expected ${what}, got "${value}"`);
      }
      return n;
    },
    /** A flag whose value must be one of `choices`. */
    oneOf<T extends string>(flag: string, value: string | undefined, choices: readonly T[]): T | undefined {
      if (value === undefined) return undefined;
      if (!(choices as readonly string[]).includes(value)) {
        throw new Usage('E_FLAG', `${flag}: expected ${choices.join(', ')}, got "${value}"`);
      }
      return value as T;
    },
  };
}

/** Repeatable flag collector for commander (`--x a --x b`). */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Repeatable, comma-separated flag collector (`--x a,b --x c`). */
export const collectList = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').filter(Boolean)];
