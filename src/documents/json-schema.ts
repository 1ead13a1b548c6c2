import { z } from 'zod';
import { BatchJobsSchema, BatchSummarySchema } from './batch-jobs.js';
import { BenchReportSchema } from './bench-report.js';
import { CalibrationTableSchema } from './calibration.js';
import { EvalReportSchema } from './eval-report.js';
import { ModelSummarySchema } from './model-summary.js';
import { PlanSchema } from './plan.js';
import { QuantizeSummarySchema } from './quantize-summary.js';
import { SearchReportSchema } from './search-report.js';
import { SensitivityReportSchema } from './sensitivity-report.js';

/** Every JSON document qtool reads or writes, by the file name its JSON Schema is published under. */
export const DOCUMENT_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ['model-summary', ModelSummarySchema],
  ['calibration', CalibrationTableSchema],
  ['plan', PlanSchema],
  ['quantize-summary', QuantizeSummarySchema],
  ['sensitivity-report', SensitivityReportSchema],
  ['search-report', SearchReportSchema],
  ['bench-report', BenchReportSchema],
  ['eval-report', EvalReportSchema],
  ['batch-jobs', BatchJobsSchema],
  ['batch-summary', BatchSummarySchema],
]);

/** JSON Schema (draft 2020-12) of one document, as published in schemas/<name>.schema.json. */
export function documentJsonSchema(name: string): Record<string, unknown> {
  const schema = DOCUMENT_SCHEMAS.get(name);
  if (!schema) throw new RangeError(`no document schema named "${name}"`);
  // 'input' describes what qtool accepts (defaults optional), which is what a hand-written file needs.
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { title: `qtool ${name}`, ...json };
}
