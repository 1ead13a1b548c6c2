/** Text and Markdown renderings of an EvalReport. */
import * as path from 'node:path';
import type { EvalReport, FidelitySummary } from '../documents/index.js';
import { alignedTable, markdownTable } from './bench-text.js';

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);
const num = (v: number | undefined, d = 4) => (v === undefined ? '-' : v.toFixed(d));
const sqnr = (f: FidelitySummary) => (f.sqnrDb === null ? 'inf' : f.sqnrDb.toFixed(2));

function sections(r: EvalReport): { title: string; header: string[]; rows: string[][] }[] {
  const out: { title: string; header: string[]; rows: string[][] }[] = [];
  const name = path.basename(r.model);
  const refName = r.reference ? path.basename(r.reference.model) : undefined;
  if (r.accuracy || r.perplexity) {
    const header = ['', name, ...(refName ? [`${refName} (reference)`] : [])];
    const rows: string[][] = [];
    if (r.accuracy) {
      rows.push(['top-1 accuracy', pct(r.accuracy.top1), ...(refName ? [pct(r.reference?.accuracy?.top1)] : [])]);
      rows.push(['top-5 accuracy', pct(r.accuracy.top5), ...(refName ? [pct(r.reference?.accuracy?.top5)] : [])]);
    }
    if (r.perplexity) {
      rows.push(['perplexity', num(r.perplexity.perplexity, 3), ...(refName ? [num(r.reference?.perplexity?.perplexity, 3)] : [])]);
      rows.push(['tokens', String(r.perplexity.tokens), ...(refName ? [String(r.reference?.perplexity?.tokens ?? '-')] : [])]);
    }
    out.push({ title: `${r.samples} samples of ${r.data}`, header, rows });
  }
  if (r.reference) {
    const fids = [{ name: 'all outputs', ...r.reference.fidelity }, ...(r.reference.outputs.length > 1 ? r.reference.outputs : [])];
    out.push({
      title: `fidelity against ${refName}`,
      header: ['output', 'cosine', 'SQNR dB', 'max abs err', 'top-1 agree'],
      rows: fids.map((f) => [f.name, num(f.cosine, 6), sqnr(f), num(f.maxAbsError, 6), pct(f.top1Agreement)]),
    });
  }
  return out;
}

function gateLine(r: EvalReport): string | undefined {
  const g = r.gate;
  if (!g) return undefined;
  return g.passed ? `gate passed: ${g.metric} ${num(g.value)}${g.drop !== undefined ? `, drop ${g.drop.toFixed(2)}` : ''}` : `gate FAILED: ${g.reason}`;
}

export function renderEvalText(r: EvalReport): string {
  const parts = sections(r).map((s) => `${s.title}\n${alignedTable(s.header, s.rows)}`);
  const g = gateLine(r);
  if (g) parts.push(g);
  return `${parts.join('\n\n')}\n`;
}

export function renderEvalMarkdown(r: EvalReport): string {
  const parts = sections(r).map((s) => `**${s.title}**\n\n${markdownTable(s.header[0] ? s.header : ['metric', ...s.header.slice(1)], s.rows)}`);
  const g = gateLine(r);
  if (g) parts.push(r.gate!.passed ? `✅ ${g}` : `❌ ${g}`);
  return `${parts.join('\n\n')}\n`;
}
