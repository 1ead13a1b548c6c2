/**
 * Child processes (batch jobs, bench runs) must not outlive the qtool process that started them: after
 * a kill -9 of the parent, an orphan would keep a core busy and could write its output later. The
 * child watches its IPC channel (closed by the kernel when the parent dies) and, as a second signal,
 * its parent pid (the orphan is re-parented to init or a subreaper), and exits with its pending temp
 * files removed. The batch runner additionally has children write into a staging folder that only
 * the live parent publishes, so an orphan that is still inside a synchronous phase cannot publish either.
 */
import { EXIT_CODES } from '../errors.js';
import { removePendingTempFiles } from '../files.js';

/** How often the parent pid is checked (the IPC 'disconnect' event is the fast path). */
export const PARENT_POLL_MS = 500;

/**
 * Exit (130, temp files removed) as soon as the parent is gone. Returns a function that stops the
 * watch (call it before a deliberate `process.disconnect()`).
 */
export function exitWithParent(opts: { pollMs?: number } = {}): () => void {
  const ppid = process.ppid;
  let stopped = false;
  const bye = () => {
    if (stopped) return;
    removePendingTempFiles();
    process.exit(EXIT_CODES.interrupted);
  };
  process.on('disconnect', bye);
  const timer = setInterval(() => {
    if (process.ppid !== ppid) bye();
  }, opts.pollMs ?? PARENT_POLL_MS);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    process.off('disconnect', bye);
  };
}
