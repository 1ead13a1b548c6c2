/**
 * The README example extractor (used by test/e2e/readme.test.ts).
 *
 * The convention, also stated in README's Development section:
 * - A fenced block whose info string is `sh`, `bash`, `shell` or `zsh` is an example
 *   that runs, in the order of the README, each block on its own in `bash -e -o pipefail`.
 * - Any other fence (```text for a synopsis, ```json, ```js, a bare ``` for transcripts and diagrams)
 *   never runs.
 * - An HTML comment on the line right before a runnable fence changes how it runs (blank lines
 *   between are allowed; GitHub does not render the comment):
 *     `<!-- readme-test: skip (why) -->`  the block is not run (say why: needs a GPU, installs, …);
 *     `<!-- readme-test: exit 4 -->`      the block must exit with that code (a gate that fails on purpose).
 * - Fences may be indented (inside a list) and use ``` or ~~~ of any length ≥ 3; a block ends at a
 *   closing fence of the same character and at least the same length, as in CommonMark.
 */

export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /** The nearest `##`/`###` heading above the block (for messages). */
  heading: string;
  skip?: string;
  expectExit: number;
}

const RUNNABLE = new Set(['sh', 'bash', 'shell', 'zsh']);
const DIRECTIVE = /^\s*<!--\s*readme-test:\s*(skip|exit)\b\s*(.*?)\s*-->\s*$/;

export function extractBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const out: ReadmeBlock[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{1,6}\s+(.*)$/.exec(lines[i]);
    if (h) heading = h[1].trim();
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
    }
    const language = lang.toLowerCase();
    if (RUNNABLE.has(language)) {
      let k = i - 1;
      while (k >= 0 && lines[k].trim() === '') k--;
      const d = k >= 0 ? DIRECTIVE.exec(lines[k]) : null;
      const block: ReadmeBlock = { line: i + 1, lang: language, code: body.join('\n'), heading, expectExit: 0 };
      if (d?.[1] === 'skip') block.skip = d[2].replace(/^\((.*)\)$/, '$1') || 'marked skip';
      if (d?.[1] === 'exit') {
        const n = Number(d[2]);
        if (!Number.isInteger(n)) throw new Error(`README line ${k + 1}: readme-test: exit needs a number, got "${d[2]}"`);
        block.expectExit = n;
      }
      out.push(block);
    }
    i = j;
  }
  return out;
}
