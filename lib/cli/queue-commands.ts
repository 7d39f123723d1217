/**
 * `jukebox worker` and `jukebox submit`: generation jobs on a BullMQ queue in Redis, run by
 * workers on any number of machines that share the output folder (lib/queue).
 */
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { type Backend } from '../backend.js';
import { JukeboxError } from '../errors.js';
import { GenerationQueue, type QueueJobStatus } from '../queue/client.js';
import { DEFAULT_QUEUE, redactRedisUrl } from '../queue/connection.js';
import { runWorker, type WorkerEvent } from '../queue/worker.js';
import { samplingArgs, type Log, type SamplingArgs } from './commands.js';
import { addOutputOptions, addSamplingOptions, backendOption, intAtLeast } from './options.js';

export interface WorkerArgs {
  redis: string;
  queue?: string;
  concurrency?: number;
  model?: string;
  backend?: Backend;
  lockSeconds?: number;
  maxJobs?: number;
  name?: string;
  /** On the first SIGINT/SIGTERM finish the running jobs (a second hands them back). */
  drain?: boolean;
}

/** Runs until `stop` (hand back the running jobs) or `drain` (finish them) aborts. */
export async function workerCommand(a: WorkerArgs, log: Log, stop?: AbortSignal, drain?: AbortSignal): Promise<void> {
  const s = await runWorker({
    redis: a.redis,
    queue: a.queue,
    concurrency: a.concurrency,
    model: a.model,
    backend: a.backend,
    lockSeconds: a.lockSeconds,
    maxJobs: a.maxJobs,
    name: a.name,
    signal: stop,
    drainSignal: drain,
    onEvent: (e) => log(describeWorkerEvent(e)),
  });
  log(`worker ${s.worker} stopped: ${s.completed} job(s) done, ${s.failed} failed, ${s.handedBack} handed back`);
}

function describeWorkerEvent(e: WorkerEvent): string {
  switch (e.type) {
    case 'ready':
      return `worker ${e.worker}: taking jobs from queue "${e.queue}" at ${e.redis} (Redis ${e.redisVersion}), ${e.concurrency} at a time; model: ${e.model}; backend: ${e.backend}`;
    case 'warning':
      return `warning: ${e.message}`;
    case 'job-started':
      return `job ${e.id}: started (sample ${e.sample} of ${e.samples}${e.attempt > 1 ? `, start ${e.attempt}` : ''}) -> ${e.outputDir}`;
    case 'job-resumed':
      return `job ${e.id}: resuming, ${e.savedWindows} window(s) already saved (${e.detail})`;
    case 'job-done':
      return `job ${e.id}: done in ${e.result.elapsedSeconds.toFixed(1)} s (${e.result.sampledWindows} window(s) sampled${e.result.resumedWindows ? `, ${e.result.resumedWindows} resumed` : ''})`;
    case 'job-failed':
      return `job ${e.id}: failed: ${e.reason}${e.willRetry ? ' (it will be retried)' : ''}`;
    case 'job-handed-back':
      return `job ${e.id}: handed back to the queue (its finished windows are saved)`;
    case 'job-lost':
      return `job ${e.id}: lost its lock (another worker took it over); stopped here`;
  }
}

export interface SubmitArgs extends SamplingArgs {
  redis: string;
  queue?: string;
  model?: string;
  attempts?: number;
  wait: boolean;
}

export async function submitCommand(a: SubmitArgs, log: Log, signal?: AbortSignal): Promise<void> {
  const q = await GenerationQueue.open({ redis: a.redis, queue: a.queue });
  try {
    const r = await q.enqueue({
      outputDir: a.output,
      seconds: a.seconds,
      totalSeconds: a.totalSeconds,
      samples: a.samples,
      artist: a.artist,
      genre: a.genre,
      lyrics: a.lyrics,
      temperature: a.temperature,
      topK: a.topK,
      topP: a.topP,
      seed: a.seed,
      levels: a.levels,
      prompt: a.prompt,
      promptSeconds: a.promptSeconds,
      codes: a.codes,
      allowUnknownLabels: a.allowUnknown,
      format: a.format,
      model: a.model,
      attempts: a.attempts,
    });
    log(`queued ${r.jobs.length} job(s) on queue "${r.queue}" at ${redactRedisUrl(a.redis)} (seed ${r.seed}):`);
    for (const j of r.jobs) log(`${j.id} -> ${j.outputDir}`);
    if (!a.wait) return;
    const counts = await q.counts();
    if (counts.workers === 0) log('note: no worker is connected to this queue yet; the jobs wait for one ("jukebox worker --redis URL")');
    const ids = r.jobs.map((j) => j.id);
    const view = progressView(ids, log);
    let statuses: QueueJobStatus[];
    try {
      statuses = await q.wait(ids, { signal, onUpdate: (s) => view.update(s) });
    } catch (e) {
      if (e instanceof JukeboxError && e.code === 'ERR_ABORTED') {
        throw new JukeboxError('ERR_ABORTED', `stopped waiting; the jobs stay on the queue and the workers go on (${ids.join(', ')})`);
      }
      throw e;
    } finally {
      view.stop();
    }
    const failed = statuses.filter((s) => s.state !== 'done');
    if (failed.length === 0) {
      log(`all ${statuses.length} job(s) done: ${r.jobs.length === 1 ? r.jobs[0].outputDir : `${a.output}/sample_0 .. sample_${r.jobs.length - 1}`}`);
      return;
    }
    const first = failed[0];
    throw new JukeboxError(
      first.error?.code ?? 'ERR_IO',
      `${failed.length} of ${statuses.length} job(s) failed; job ${first.id} (sample ${first.sample}): ${first.error?.message ?? first.state}`,
    );
  } finally {
    await q.close();
  }
}

function progressLine(s: QueueJobStatus): string {
  const p = s.progress;
  if (s.state === 'done') return `done${s.result ? ` in ${s.result.elapsedSeconds.toFixed(1)} s on ${s.result.worker}` : ''}`;
  if (s.state === 'failed' || s.state === 'missing') return `failed: ${s.error?.message ?? ''} [${s.error?.code ?? 'ERR_IO'}]`;
  if (s.state === 'queued') return s.starts > 0 ? 'queued again (its worker stopped or died; the next one resumes it)' : 'queued';
  if (!p) return 'running';
  const where = p.phase === 'sample' ? `level ${p.level} window ${Math.min(p.window + 1, p.windows)}/${p.windows}` : p.phase === 'decode' ? `decoding level ${p.level}` : p.phase === 'load' ? 'loading' : 'writing';
  const eta = p.etaSeconds !== null ? `, eta ${p.etaSeconds < 60 ? `${p.etaSeconds} s` : `${Math.round(p.etaSeconds / 60)} min`}` : '';
  return `${where}${eta} on ${p.worker}${p.attempt > 1 ? ` (start ${p.attempt})` : ''}`;
}

/** One bar per job on a terminal (one bar for all past a dozen jobs); elsewhere a line per change of state. */
function progressView(ids: string[], log: Log): { update(s: QueueJobStatus): void; stop(): void } {
  const tty = process.stderr.isTTY === true && !process.env.CI;
  if (!tty) {
    const seen = new Map<string, string>();
    return {
      update(s) {
        const key = `${s.state}:${s.progress?.worker ?? ''}:${s.progress?.attempt ?? ''}`;
        if (s.state === 'running' && !s.progress) return;
        if (seen.get(s.id) === key) return;
        seen.set(s.id, key);
        log(`job ${s.id}: ${progressLine(s)}`);
      },
      stop() {},
    };
  }
  const multi = new cliProgress.MultiBar(
    { format: '{id} [{bar}] {percentage}% | {status}', stream: process.stderr, hideCursor: true, clearOnComplete: false, autopadding: true },
    cliProgress.Presets.shades_classic,
  );
  const fractions = new Map<string, number>(ids.map((id) => [id, 0]));
  if (ids.length <= 12) {
    const bars = new Map(ids.map((id) => [id, multi.create(1000, 0, { id, status: 'queued' })]));
    return {
      update(s) {
        const f = s.state === 'done' ? 1 : (s.progress?.fraction ?? 0);
        bars.get(s.id)?.update(Math.round(f * 1000), { id: s.id, status: progressLine(s) });
        if (s.state === 'failed') multi.log(`job ${s.id}: ${progressLine(s)}\n`);
      },
      stop: () => multi.stop(),
    };
  }
  const states = new Map<string, string>();
  const bar = multi.create(1000, 0, { id: `${ids.length} jobs`, status: '' });
  return {
    update(s) {
      fractions.set(s.id, s.state === 'done' ? 1 : (s.progress?.fraction ?? 0));
      states.set(s.id, s.state);
      const all = [...fractions.values()].reduce((a, b) => a + b, 0) / ids.length;
      const n = (st: string) => [...states.values()].filter((x) => x === st).length;
      bar.update(Math.round(all * 1000), { status: `${n('done')} done, ${n('running')} running, ${ids.length - n('done') - n('running') - n('failed')} queued, ${n('failed')} failed` });
      if (s.state === 'failed') multi.log(`job ${s.id}: ${progressLine(s)}\n`);
    },
    stop: () => multi.stop(),
  };
}

/** Registers `worker` and `submit` on the program. */
export function addQueueCommands(program: Command, log: Log): void {
  program
    .command('worker')
    .description('take generation jobs from a Redis job queue until stopped (SIGINT/SIGTERM hand the running job back; a dead worker\'s job is taken over)')
    .requiredOption('--redis <url>', 'the Redis server, e.g. redis://127.0.0.1:6379')
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .option('--concurrency <n>', 'jobs at a time in this process', intAtLeast('--concurrency', 1), 1)
    .option('--model <dir>', 'model folder for jobs that name none (default: the model shipped in the package)')
    .addOption(backendOption())
    .option('--lock-seconds <s>', 'heartbeat: a job whose worker stops renewing its lock this long is taken over (the same on every worker)', Number, 30)
    .option('--drain', 'on the first SIGINT/SIGTERM finish the running jobs (a second signal hands them back)')
    .option('--max-jobs <n>', 'stop after this many jobs', intAtLeast('--max-jobs', 1))
    .option('--name <name>', 'name shown on the jobs (default host:pid)')
    .action(async (o: { redis: string; queue: string; concurrency: number; model?: string; backend: Backend; lockSeconds: number; drain?: boolean; maxJobs?: number; name?: string }) => {
      const stop = new AbortController();
      const drain = new AbortController();
      let signals = 0;
      const onSignal = () => {
        signals++;
        if (o.drain && signals === 1) {
          log('stopping after the running job(s) (signal again to hand them back now)');
          drain.abort();
        } else {
          log('stopping: handing the running job(s) back to the queue');
          stop.abort();
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await workerCommand({ ...o, drain: o.drain === true }, log, stop.signal, drain.signal);
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    });

  const submit = program
    .command('submit')
    .description('put generation jobs on a Redis job queue, one per sample, for "jukebox worker"s; -o must be a folder every worker sees')
    .requiredOption('--redis <url>', 'the Redis server, e.g. redis://127.0.0.1:6379')
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .requiredOption('-o, --output <dir>', 'output folder on storage every worker sees (N samples: <dir>/sample_0 .. sample_{N-1}, each what "jukebox generate" writes)');
  addSamplingOptions(submit, {
    int: intAtLeast,
    samples: 'number of samples (one job each)',
    minSamples: 1,
    seed: 'random seed (default: a random one, the same for every sample; printed)',
    levels: 'levels to sample, e.g. 2 for the top only (default: all the model has)',
    prompt: 'continue from this audio (a file every worker can read)',
    codes: 'continue from / upsample these codes (an .npz every worker can read)',
  });
  addOutputOptions(submit)
    .option('--model <dir>', "model folder the workers load (a path they all see; default: each worker's own --model)")
    .option('--attempts <n>', 'tries per job for failures a retry can fix (a dead worker\'s job is taken over without using one)', intAtLeast('--attempts', 1), 3)
    .option('--wait', 'show each job\'s progress and exit when all are done (non-zero with the reason if one failed)')
    .action(async (o: Record<string, unknown>) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      try {
        await submitCommand(
          {
            redis: o.redis as string,
            queue: o.queue as string,
            ...samplingArgs(o),
            model: o.model as string | undefined,
            attempts: o.attempts as number,
            wait: o.wait === true,
          },
          log,
          ac.signal,
        );
      } finally {
        process.removeListener('SIGINT', stop);
      }
    });
}
