import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLabelsCsv, resolveLabels, writeNpy } from '../../src/data/index.js';
import { InputError } from '../../src/errors.js';
import { makeTensor } from '../../src/tensor/index.js';
import { makeTempDir } from '../helpers/tmp.js';

const ids = (t: { data: unknown }) => Array.from(t.data as BigInt64Array, Number);

describe('label files', () => {
  const dir = makeTempDir();
  const write = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  it('one column in sample order, with or without a header; class names in sorted order with a note', () => {
    expect(ids(readLabelsCsv(write('a.csv', 'label\n3\n1\n\n2\n')))).toEqual([3, 1, 2]);
    expect(ids(readLabelsCsv(write('b.csv', '0\r\n4\r\n')))).toEqual([0, 4]);
    const notes = new Set<string>();
    expect(ids(readLabelsCsv(write('c.csv', 'dog\ncat\n"dog"\n'), {}, notes))).toEqual([1, 0, 1]);
    expect([...notes][0]).toMatch(/class names mapped to ids in sorted order \(cat=0, dog=1\)/);
  });

  it('file,label rows match the data files by relative path or unique bare name', () => {
    const keys = ['a/x.png', 'b/x.png', 'b/y.png'];
    expect(ids(readLabelsCsv(write('d.csv', 'path,class\nb/y.png,7\na/x.png,5\nb/x.png,6\n'), { sampleKeys: keys }))).toEqual([5, 6, 7]);
    expect(ids(readLabelsCsv(write('e.csv', 'a/x.png,1\nb/x.png,2\ny.png,3\n'), { sampleKeys: keys }))).toEqual([1, 2, 3]);
    expect(() => readLabelsCsv(write('f.csv', 'a/x.png,1\n'), { sampleKeys: keys })).toThrow(/no row for data file "b\/x\.png"/);
    expect(() => readLabelsCsv(write('g.csv', 'a/x.png,1\n'))).toThrow(/file,label rows need data read from files/);
    expect(() => readLabelsCsv(write('h.csv', '1,2,3\n'))).toThrow(InputError);
    expect(() => readLabelsCsv(write('i.csv', 'a/x.png,emu\n'), { sampleKeys: ['a/x.png'], classes: ['cat', 'dog'] })).toThrow(/class "emu" is not one of the data's class folders/);
  });

  it('resolveLabels: a file, in-memory labels, or the labels the data carries', async () => {
    const npy = path.join(dir, 'y.npy');
    writeNpy(npy, makeTensor('int64', [2], BigInt64Array.from([4n, 5n])));
    const own = makeTensor('int64', [1], BigInt64Array.from([9n]));
    expect(ids((await resolveLabels(npy, { labels: own }))!)).toEqual([4, 5]);
    expect(ids((await resolveLabels(Int32Array.from([1, 2]), { labels: own }))!)).toEqual([1, 2]);
    expect(ids((await resolveLabels(undefined, { labels: own }))!)).toEqual([9]);
    expect(await resolveLabels(undefined, {})).toBeUndefined();
  });
});
