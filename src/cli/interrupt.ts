/**
 * Ctrl-C handling for the CLI. Commands that own child processes register a hook that stops them
 * and resolves once they have exited and their temp files are gone; the SIGINT handler waits for
 * every hook (bounded) before it exits 130. A second Ctrl-C exits at once.
 */
const hooks = new Set<() => Promise<unknown>>();

/** Run `hook` on SIGINT before the process exits; returns a function that unregisters it. */
export function onInterrupt(hook: () => Promise<unknown>): () => void {
  hooks.add(hook);
  return () => hooks.delete(hook);
}

/** Run every registered hook; resolves when all settled or after `timeoutMs`, whichever is first. */
export async function runInterruptHooks(timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([Promise.allSettled([...hooks].map((h) => h())), timeout]);
  clearTimeout(timer);
}
