/**
 * Generation jobs on a BullMQ queue (Redis): enqueueGeneration() on any machine, runWorker()
 * on as many as you like, all seeing the output folder on shared storage.
 */
export { DEFAULT_QUEUE, checkRedis, type QueueConnectionOptions, type RedisServerInfo } from './connection.js';
export {
  enqueueGeneration,
  waitForJobs,
  GenerationQueue,
  type EnqueueGenerationOptions,
  type EnqueuedRun,
  type QueuedJob,
  type QueueJobState,
  type QueueJobStatus,
  type WaitOptions,
} from './client.js';
export { runWorker, type RunWorkerOptions, type WorkerEvent, type WorkerSummary } from './worker.js';
export type { GenerationJobData, GenerationJobResult, GenerationJobSettings, QueueJobProgress, JobModel } from './job-data.js';
