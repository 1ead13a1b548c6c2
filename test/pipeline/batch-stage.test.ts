import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStaging, publishStaged, removeStaging, STAGE_PREFIX, stagedFiles, sweepStaleStaging } from '../../src/pipeline/batch-stage.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-stage-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('staging', () => {
  it('stages next to the output, lists the model first and skips temp files, publishes companions before the model', () => {
    const out = path.join(dir, 'm.onnx');
    const stage = createStaging(out);
    expect(path.dirname(stage.dir)).toBe(dir);
    expect(path.basename(stage.dir).startsWith(STAGE_PREFIX)).toBe(true);
    expect(path.basename(stage.output)).toBe('m.onnx');
    expect(stagedFiles(stage)).toEqual([]); // nothing finished yet
    fs.writeFileSync(path.join(stage.dir, 'm.onnx.data'), 'data');
    fs.writeFileSync(path.join(stage.dir, '.qtool-tmp-1-ab-m.onnx'), 'half');
    fs.writeFileSync(stage.output, 'model');
    fs.mkdirSync(path.join(stage.dir, 'w'));
    fs.writeFileSync(path.join(stage.dir, 'w', 'b.bin'), 'sub');
    const files = stagedFiles(stage);
    expect(files.map((f) => path.relative(stage.dir, f))).toEqual(['m.onnx', 'm.onnx.data', path.join('w', 'b.bin')]);
    expect(publishStaged(files, stage.dir, dir)).toEqual([out, `${out}.data`, path.join(dir, 'w', 'b.bin')]);
    expect(fs.readFileSync(out, 'utf8')).toBe('model');
    removeStaging(stage);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'm.onnx.data', 'w']);
    // Companions go first, the model last: when the model cannot be renamed, its data is already in place, the model is not.
    const s2 = createStaging(path.join(dir, 'n.onnx'));
    fs.writeFileSync(s2.output, 'model');
    fs.writeFileSync(`${s2.output}.data`, 'data');
    fs.mkdirSync(path.join(dir, 'n.onnx'));
    fs.writeFileSync(path.join(dir, 'n.onnx', 'keep'), '');
    expect(() => publishStaged(stagedFiles(s2), s2.dir, dir)).toThrow();
    expect(fs.existsSync(path.join(dir, 'n.onnx.data'))).toBe(true);
    expect(fs.statSync(path.join(dir, 'n.onnx')).isDirectory()).toBe(true);
    removeStaging(s2);
  });
  it('sweeps the staging folders of dead processes only', async () => {
    const live = createStaging(path.join(dir, 'x.onnx'));
    const dead = await new Promise<number>((resolve) => {
      const p = spawn(process.execPath, ['-e', '0']);
      p.on('exit', () => resolve(p.pid!));
    });
    const stale = live.dir.replace(`-${process.pid}-`, `-${dead}-`);
    fs.mkdirSync(stale);
    fs.writeFileSync(path.join(stale, 'x.onnx'), 'late');
    sweepStaleStaging([dir, dir]);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(live.dir)).toBe(true);
    removeStaging(live);
  });
});
