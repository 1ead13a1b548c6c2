/**
 * What a user's terminal shows while qtool works: the real bin/qtool in tmux (a terminal emulator),
 * its screen captured every 50 ms. Checked on every captured screen:
 * - each progress line fits the width (no wrapped rows) and is exactly one well-formed frame, so a
 *   shorter frame left no residue of a longer one;
 * - no frame says `ETA 0s`, and a frame with nothing done yet has no ETA;
 * - the count is `done/total <count noun>`;
 * - messages (warnings, "stopping…", "interrupted") start on their own line, never after a frame;
 * - after Ctrl-C, "stopping…" shows before the command ends; `qtool batch` names the running job and
 *   shows that job's own progress.
 * Skipped without tmux (apt-get install tmux; .ci/run installs it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, FMNIST, ROOT } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';
import { findTmux, TmuxScreen } from '../helpers/tmux.js';

const tmux = findTmux();
const dir = makeTempDir('qtool-term-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const WIDTH = 64;
const UNITS = ['samples', 'batches', 'layers', 'evaluations', 'jobs', 'models', 'runs'];
/** `<label>  [####....]  12/64 <unit>  [3.2/s]  [ETA 10s | <1s | 12s]  [detail]` */
const FRAME = new RegExp(`^([a-z][A-Za-z -]*?)  \\[[#.]+\\]  (\\d+)/≤?(\\d+) (${UNITS.join('|')})(  [\\d.]+/s)?(  (ETA (<1s|[\\dhms]+)|[\\dhms]+))?(  \\S.*)?$`);
const isFrameLike = (line: string) => /\[[#.]{4,}\]/.test(line);

function checkScreens(screens: readonly string[], width = WIDTH): { frames: string[] } {
  const frames: string[] = [];
  for (const screen of screens) {
    // (The terminal itself echoes ^C where the cursor is; qtool then clears that row.)
    for (const line of screen.split('\n').map((l) => l.replace(/\^C$/, ''))) {
      if (!isFrameLike(line)) continue;
      expect(line.length, `progress row wider than the terminal:\n${line}`).toBeLessThanOrEqual(width);
      const m = FRAME.exec(line);
      expect(m, `not one clean progress frame (residue or a message glued to it):\n"${line}"`).not.toBeNull();
      expect(line).not.toMatch(/ETA 0s/);
      if (m![2] === '0') expect(line, 'first frame with an ETA').not.toMatch(/ETA/);
      expect(Number(m![2])).toBeLessThanOrEqual(Number(m![3]));
      frames.push(line);
    }
  }
  return { frames };
}

let scripts = 0;
/** A short line to type (the long command goes in a script, so only qtool's own output can be wide). */
const q = (args: string) => {
  const file = path.join(dir, `run${++scripts}.sh`);
  fs.writeFileSync(file, `node ${BIN} ${args}\necho "EXIT=$?"\n`);
  return `bash ${file}`;
};

describe.skipIf(!tmux)('the terminal while qtool runs (tmux)', () => {
  it('calibrate: clean frames that fit, counts of samples, no ETA 0s; the summary starts on a fresh line', async () => {
    const t = new TmuxScreen(WIDTH, 40, ROOT);
    try {
      t.type(q(`calibrate ${FMNIST.cnn} --data ${FMNIST.calibX} --method percentile --batch-size 2 -o ${dir}/c1.json`));
      const end = await t.waitFor((s) => /EXIT=\d+/.test(s));
      expect(end).toMatch(/EXIT=0/);
      const { frames } = checkScreens(t.screens);
      expect(frames.length, 'some progress was drawn').toBeGreaterThan(0);
      expect(frames.every((f) => / samples/.test(f))).toBe(true);
      expect(end).toMatch(/^.*c1\.json: percentile ranges of/m);
      expect(end.split('\n').filter(isFrameLike), 'the progress line is cleared at the end').toEqual([]);
    } finally {
      t.close();
    }
  });

  it('Ctrl-C: "stopping…" at once on its own line, then "interrupted", exit 130', async () => {
    const t = new TmuxScreen(WIDTH, 40, ROOT);
    try {
      t.type(q(`sensitivity ${FMNIST.cnn} --data ${FMNIST.calibX} --probes 32 -o ${dir}/s.json`));
      await t.waitFor((s) => s.split('\n').some(isFrameLike));
      t.interrupt();
      const stopping = await t.waitFor((s) => /stopping…/.test(s) || /EXIT=/.test(s));
      expect(stopping).toMatch(/^qtool: stopping…/m);
      expect(stopping, '"stopping…" shows while the command is still stopping or right as it ends').toMatch(/stopping…/);
      const end = await t.waitFor((s) => /EXIT=\d+/.test(s));
      expect(end).toMatch(/EXIT=130/);
      expect(end).toMatch(/^qtool: interrupted/m);
      checkScreens(t.screens);
      expect(fs.existsSync(path.join(dir, 's.json'))).toBe(false);
    } finally {
      t.close();
    }
  });

  it('batch: shows which job runs and that job’s progress', async () => {
    const jobs = {
      kind: 'qtool.batch-jobs',
      version: 1,
      defaults: { bits: 8 },
      jobs: [
        { id: 'cnn-static', model: FMNIST.cnn, output: path.join(dir, 'out/cnn.int8.onnx'), recipe: { mode: 'static', data: FMNIST.calibX, batchSize: 2 } },
        { id: 'mlp-dynamic', model: FMNIST.mlp, output: path.join(dir, 'out/mlp.int8.onnx'), recipe: { mode: 'dynamic' } },
      ],
    };
    fs.writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(jobs));
    const t = new TmuxScreen(80, 40, ROOT);
    try {
      t.type(q(`batch ${dir}/jobs.json`));
      const end = await t.waitFor((s) => /EXIT=\d+/.test(s));
      expect(end).toMatch(/EXIT=0/);
      const { frames } = checkScreens(t.screens, 80);
      expect(frames.some((f) => /jobs .*cnn-static/.test(f)), 'a frame names the running job').toBe(true);
      expect(frames.some((f) => /cnn-static calibrating \d+\/\d+/.test(f)), 'the job’s own progress shows').toBe(true);
    } finally {
      t.close();
    }
  });
});

it('tmux is available, or the terminal tests say they were skipped', () => {
  if (!tmux) console.warn('terminal: no tmux found (apt-get install tmux); the terminal checks were skipped');
  expect(true).toBe(true);
});
