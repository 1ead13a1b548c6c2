import { describe, expect, it } from 'vitest';
import { formatDuration, ProgressLine, renderProgress, type ProgressStream } from '../../src/cli/progress.js';

const frame = { label: 'calibrating', done: 128, total: 512, unit: 'samples' };

describe('renderProgress', () => {
  it('no rate and no ETA before 1 s or before anything is done', () => {
    expect(renderProgress({ ...frame, done: 0 }, 5000, 100)).toBe('calibrating  [........................]  0/512 samples');
    expect(renderProgress(frame, 500, 100)).toBe('calibrating  [######..................]  128/512 samples');
  });

  it('rate and ETA from the elapsed time; "<1s" instead of "ETA 0s"; elapsed time when finished', () => {
    expect(renderProgress(frame, 2000, 100)).toBe('calibrating  [######..................]  128/512 samples  64/s  ETA 6s');
    expect(renderProgress({ ...frame, done: 511 }, 2000, 100)).toMatch(/ETA <1s$/);
    expect(renderProgress({ ...frame, done: 512 }, 65_000, 100)).toBe('calibrating  [########################]  512/512 samples  1m05s');
  });

  it('fits columns − 1 at any width: shorter bar, then no rate, then a shortened detail or none', () => {
    const f = { label: 'measuring sensitivity', done: 3, total: 8, unit: 'layers', detail: '/down2/down2.0/Conv (hessian)' };
    for (let cols = 20; cols <= 120; cols++) {
      const s = renderProgress(f, 3000, cols);
      expect(s.length, `${cols}: ${s}`).toBeLessThanOrEqual(cols - 1);
      expect(s).toMatch(cols >= 50 ? /3\/8 layers/ : /./);
    }
    expect(renderProgress(f, 3000, 120)).toBe('measuring sensitivity  [#########...............]  3/8 layers  1.0/s  ETA 5s  /down2/down2.0/Conv (hessian)');
    expect(renderProgress(f, 3000, 80)).toBe('measuring sensitivity  [####......]  3/8 layers  ETA 5s  /down2/…Conv (hessian)');
    expect(renderProgress(f, 3000, 60)).toBe('measuring sensitivity  [####......]  3/8 layers  ETA 5s');
    expect(renderProgress(f, 3000, 44)).toBe('measuring sensitivity  3/8 layers  ETA 5s');
    expect(renderProgress(f, 3000, 40)).toBe('measur… sensitivity  3/8 layers  ETA 5s');
  });

  it('formatDuration', () => {
    expect([0, 999, 59_400, 60_000, 3_599_000, 3_600_000, 7_380_000].map(formatDuration)).toEqual(['0s', '1s', '59s', '1m00s', '59m59s', '1h00m', '2h03m']);
  });
});

class FakeTty implements ProgressStream {
  isTTY = true;
  columns = 60;
  out = '';
  write(s: string) {
    this.out += s;
    return true;
  }
  /** What a terminal shows: apply \r, ESC[2K and \n to a screen of rows. */
  screen(): string[] {
    const rows: string[] = [''];
    let col = 0;
    const s = this.out;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c === '\r') col = 0;
      else if (c === '\n') {
        rows.push('');
        col = 0;
      } else if (s.startsWith('\x1b[2K', i)) {
        rows[rows.length - 1] = '';
        i += 3;
      } else {
        const r = rows[rows.length - 1];
        rows[rows.length - 1] = r.slice(0, col).padEnd(col) + c + r.slice(col + 1);
        col++;
      }
    }
    return rows;
  }
}

describe('ProgressLine', () => {
  it('clears before each redraw (a shorter frame leaves no residue), throttles to 10/s, messages go above', () => {
    let t = 0;
    const tty = new FakeTty();
    const p = new ProgressLine(tty, true, () => t);
    p.update({ label: 'searching', done: 0, total: 10, unit: 'evaluations', detail: 'a very long configuration label' });
    t = 50;
    p.update({ label: 'searching', done: 1, total: 10, unit: 'evaluations' }); // throttled
    expect(tty.screen()).toEqual(['searching  [..........]  0/10 evaluations  a ver…tion label']);
    t = 1500;
    p.update({ label: 'searching', done: 2, total: 10, unit: 'evaluations' });
    p.message('qtool: warning: something');
    expect(tty.screen()).toEqual(['qtool: warning: something', 'searching  [###.............]  2/10 evaluations  ETA 6s']);
    p.end();
    expect(tty.screen()).toEqual(['qtool: warning: something', '']);
    p.update({ label: 'searching', done: 3, total: 10, unit: 'evaluations' });
    expect(tty.out.endsWith('\x1b[2K')).toBe(true);
  });

  it('draws nothing when disabled (not a TTY, CI, --quiet); messages still print', () => {
    const tty = new FakeTty();
    const p = new ProgressLine(tty, false);
    p.update(frame);
    p.message('qtool: note');
    p.end();
    expect(tty.out).toBe('qtool: note\n');
  });
});
