import { describe, expect, it } from 'vitest';
import { table } from '../../src/cli/output.js';

describe('table', () => {
  it('aligns columns', () => {
    expect(table(['a', 'bb'], [['xyz', '1'], ['q', '22']])).toBe('a    bb\n---  --\nxyz  1\nq    22');
  });

  it('handles 200,000 rows (a model with that many inputs) without a spread over the rows', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => [`input_${i}`, 'float32', '[1, 4]']);
    const out = table(['input', 'dtype', 'shape'], rows);
    expect(out.split('\n')).toHaveLength(200_002);
    expect(out.split('\n')[1]).toBe(`${'-'.repeat('input_199999'.length)}  -------  ------`);
  });
});
