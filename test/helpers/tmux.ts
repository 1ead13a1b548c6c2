/**
 * Run a command in a real terminal (tmux, its own server socket) and read what the screen shows.
 * `capture-pane -J` joins wrapped rows, so a line that overflowed the terminal shows up longer than the
 * width. Returns undefined from findTmux() when tmux is missing (apt-get install tmux), so tests skip.
 */
import { spawnSync } from 'node:child_process';

export function findTmux(): string | undefined {
  const r = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
  return r.status === 0 ? 'tmux' : undefined;
}

export class TmuxScreen {
  private readonly socket = `qtool-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly screens: string[] = [];

  constructor(
    readonly width: number,
    readonly height: number,
    cwd: string,
  ) {
    this.tmux(['new-session', '-d', '-s', 'main', '-x', String(width), '-y', String(height), '-c', cwd, 'env -u CI -u NO_COLOR bash --norc --noprofile']);
    this.tmux(['set-option', '-t', 'main', 'history-limit', '5000']);
  }

  private tmux(args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args[0]} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Type a command line and press Enter. */
  type(line: string): void {
    this.tmux(['send-keys', '-t', 'main', '-l', line]);
    this.tmux(['send-keys', '-t', 'main', 'Enter']);
  }

  /** Send Ctrl-C. */
  interrupt(): void {
    this.tmux(['send-keys', '-t', 'main', 'C-c']);
  }

  /** The visible screen plus scrollback, wrapped rows joined, trailing blank rows dropped. */
  capture(): string {
    const s = this.tmux(['capture-pane', '-p', '-J', '-t', 'main', '-S', '-5000']).replace(/\s+$/, '');
    this.screens.push(s);
    return s;
  }

  /** Capture every `everyMs` until `predicate(screen)` holds (or throw after `timeoutMs`). */
  async waitFor(predicate: (screen: string) => boolean, timeoutMs = 120_000, everyMs = 50): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const s = this.capture();
      if (predicate(s)) return s;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for the terminal; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  close(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { encoding: 'utf8' });
  }
}
