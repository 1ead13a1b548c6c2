/** Child process entry for runBatch(): runs one job and reports JSON back. */
import { removePendingTempFiles } from '../files.js';
import { runBatchJob } from './batch-job.js';
import type { ResolvedJob } from './batch.js';
import { serveChild } from './child-process.js';

// Ctrl-C reaches the whole process group: leave no temp files behind.
process.on('SIGINT', () => {
  removePendingTempFiles();
  process.exit(130);
});
serveChild((job: ResolvedJob, emit) => runBatchJob(job, emit));
