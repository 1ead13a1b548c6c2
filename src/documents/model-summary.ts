import { z } from 'zod';

export const TensorSummarySchema = z.object({
  name: z.string(),
  dtype: z.string(),
  /** Each dim is a number, a symbolic name, or null when unknown. */
  shape: z.array(z.union([z.number(), z.string(), z.null()])).nullable(),
});

export const QuantizableLayerSummarySchema = z.object({
  id: z.string(),
  opType: z.string(),
  graph: z.string(),
  weight: z.string(),
  weightShape: z.array(z.number()),
  weightDtype: z.string(),
  parameters: z.number(),
});

export const ModelSummarySchema = z.object({
  kind: z.literal('qtool.model-summary'),
  version: z.literal(1),
  file: z.string(),
  fileBytes: z.number(),
  irVersion: z.number(),
  opsets: z.array(z.object({ domain: z.string(), version: z.number() })),
  producer: z.object({ name: z.string(), version: z.string() }),
  graphName: z.string(),
  inputs: z.array(TensorSummarySchema),
  outputs: z.array(TensorSummarySchema),
  nodeCount: z.number(),
  opHistogram: z.record(z.string(), z.number()),
  parameters: z.object({
    count: z.number(),
    bytes: z.number(),
    byDtype: z.record(z.string(), z.object({ count: z.number(), bytes: z.number() })),
    /** Where the weights live: graph initializers vs Constant nodes (paddle2onnx exports). */
    inInitializers: z.number(),
    inConstantNodes: z.number(),
  }),
  quantizableLayers: z.array(QuantizableLayerSummarySchema),
  subgraphs: z.array(z.object({ path: z.string(), ownerOp: z.string(), nodeCount: z.number() })),
  externalData: z.array(z.object({ location: z.string(), tensors: z.number(), bytes: z.number() })),
  metadata: z.record(z.string(), z.string()),
});

export type ModelSummary = z.infer<typeof ModelSummarySchema>;
