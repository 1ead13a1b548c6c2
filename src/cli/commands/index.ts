import type { Command } from 'commander';
import { register as inspect } from './inspect.js';
import { register as calibrateCommand } from './calibrate.js';
import { register as bench } from './bench.js';
import { register as evalCommand } from './eval.js';
import { register as batch } from './batch.js';
import { register as sensitivity } from './sensitivity.js';
import { register as search } from './search.js';
import { register as quantizeCommand } from './quantize.js';

/** Every command, in the order of the data flow (help lists them so). */
export const COMMANDS: readonly ((program: Command) => void)[] = [
  inspect,
  calibrateCommand,
  quantizeCommand,
  sensitivity,
  search,
  evalCommand,
  bench,
  batch,
];
