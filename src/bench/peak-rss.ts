import * as fs from 'node:fs';

/**
 * Peak resident memory of this process, in bytes. On Linux it is VmHWM from /proc/self/status, which
 * starts afresh at execve. resourceUsage().maxRSS does not: Linux carries ru_maxrss across fork and
 * execve, so a child process would report its parent's peak whenever that was higher. Elsewhere,
 * maxRSS (or the current RSS if larger).
 */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // no procfs: fall through
  }
  return Math.max(process.resourceUsage().maxRSS * 1024, process.memoryUsage().rss);
}
