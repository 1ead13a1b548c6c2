import type { Command } from 'commander';
import { formatBytes, printJson, printText, table } from '../output.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show a model: IR version, opsets, inputs/outputs, op histogram, parameters, quantizable layers, subgraphs, external data')
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print one JSON document (qtool.model-summary/1)')
    .action(async (modelPath: string, opts: { json?: boolean }) => {
      const { formatShape, loadModel, inspectModel } = await import('../../index.js');
      const summary = inspectModel(loadModel(modelPath));
      if (opts.json) {
        printJson(summary);
        return;
      }
      // Shapes of hostile rank (5,000 dims) are elided; the JSON output keeps them whole.
      const shape = (s: (number | string | null)[] | null) => (s ? `[${formatShape(s)}]` : '?');
      const lines: string[] = [];
      lines.push(`${summary.file}: ${formatBytes(summary.fileBytes)}, IR ${summary.irVersion}, producer ${summary.producer.name || '-'} ${summary.producer.version}`);
      lines.push(`opsets: ${summary.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`);
      lines.push('');
      lines.push(table(['input', 'dtype', 'shape'], summary.inputs.map((v) => [v.name, v.dtype, shape(v.shape)])));
      lines.push('');
      lines.push(table(['output', 'dtype', 'shape'], summary.outputs.map((v) => [v.name, v.dtype, shape(v.shape)])));
      lines.push('');
      lines.push(`${summary.nodeCount} nodes: ${Object.entries(summary.opHistogram).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      lines.push(
        `parameters: ${summary.parameters.count} (${formatBytes(summary.parameters.bytes)}; ` +
          Object.entries(summary.parameters.byDtype).map(([k, v]) => `${k} ${v.count}`).join(', ') +
          `; in Constant nodes ${summary.parameters.inConstantNodes})`,
      );
      lines.push('');
      lines.push(`quantizable layers: ${summary.quantizableLayers.length}`);
      if (summary.quantizableLayers.length) {
        lines.push(table(['layer', 'op', 'weight shape', 'params', 'graph'], summary.quantizableLayers.map((l) => [l.id, l.opType, `[${formatShape(l.weightShape)}]`, String(l.parameters), l.graph])));
      }
      if (summary.subgraphs.length) {
        lines.push('');
        lines.push(table(['subgraph', 'owner', 'nodes'], summary.subgraphs.map((s) => [s.path, s.ownerOp, String(s.nodeCount)])));
      }
      if (summary.externalData.length) {
        lines.push('');
        lines.push(table(['external data', 'tensors', 'bytes'], summary.externalData.map((e) => [e.location, String(e.tensors), String(e.bytes)])));
      }
      printText(lines.join('\n'));
    });
}
