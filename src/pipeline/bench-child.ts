/** Child process entry for bench(): measures one model in a fresh process and reports JSON back. */
import { serveChild } from './child-process.js';
import { measureOneModel, type BenchChildRequest } from './bench.js';

serveChild((req: BenchChildRequest) => measureOneModel(req));
