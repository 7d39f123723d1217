/**
 * The job queue under load on loopback: 200 small jobs (the top level only, 1 s each)
 * through two `jukebox worker` processes and a real redis-server. None may be lost or run
 * twice, samples across the run must equal generate() with the same seed, and the queue's
 * latency and Redis load are reported (and bounded).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJukebox } from '../lib/generate/generate.js';
import { GenerationQueue, enqueueGeneration } from '../lib/queue/client.js';
import { redisConnection } from '../lib/queue/connection.js';
import { folderCodes, killAll, noRedisReason, skipQueueTests, percentile, startRedis, startWorker, type TestRedis, type WorkerProcess } from './queue-redis.js';

if (skipQueueTests) console.warn(`job queue load test skipped: ${noRedisReason}`);

const N = 200;
const SEED = 5;

async function commandsProcessed(url: string): Promise<number> {
  const r = await redisConnection(url);
  try {
    return Number(/total_commands_processed:(\d+)/.exec(await r.info('stats'))![1]);
  } finally {
    r.disconnect();
  }
}

const ms = (xs: number[]) => `p50 ${percentile(xs, 50)} ms, p95 ${percentile(xs, 95)} ms, max ${Math.max(...xs)} ms`;

describe.skipIf(skipQueueTests)('job queue under load (loopback)', () => {
  let redis: TestRedis;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await killAll(workers);
    await redis?.stop();
  });

  it(`${N} jobs (top level, 1 s) through 2 workers: none lost or duplicated, latency reported`, async () => {
    const queue = 'load';
    const out = mkdtempSync(join(tmpdir(), 'jukebox-queue-load-'));
    const a = startWorker(redis.url, queue);
    const b = startWorker(redis.url, queue);
    workers.push(a, b);
    await Promise.all([a.ready, b.ready]);
    const q = await GenerationQueue.open({ redis: redis.url, queue });
    try {
      const cmd0 = await commandsProcessed(redis.url);
      const t0 = Date.now();
      const run = await enqueueGeneration({ redis: redis.url, queue, samples: N, seconds: 1, levels: [2], seed: SEED, outputDir: out });
      const enqueueMs = Date.now() - t0;
      expect(run.jobs).toHaveLength(N);
      const ids = run.jobs.map((j) => j.id);
      const statuses = await q.wait(ids);
      const wallS = (Date.now() - t0) / 1000;
      const commands = (await commandsProcessed(redis.url)) - cmd0;

      // none lost, none run twice
      expect(statuses.map((s) => s.state)).toEqual(Array(N).fill('done'));
      expect(statuses.map((s) => s.starts)).toEqual(Array(N).fill(1));
      expect(new Set(statuses.map((s) => s.outputDir)).size).toBe(N);
      expect(statuses.map((s) => s.sample).sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i));
      const perWorker = new Map<string, typeof statuses>();
      for (const s of statuses) perWorker.set(s.result!.worker, [...(perWorker.get(s.result!.worker) ?? []), s]);
      expect(perWorker.size).toBe(2);

      // Latency: time in the queue (mostly the backlog: 200 jobs, 2 workers), and the gap a
      // busy worker spends between finishing one job and starting the next.
      const waited = statuses.map((s) => s.startedAt! - s.queuedAt);
      const gaps: number[] = [];
      for (const list of perWorker.values()) {
        list.sort((x, y) => x.startedAt! - y.startedAt!);
        for (let i = 1; i < list.length; i++) gaps.push(Math.max(0, list[i].startedAt! - list[i - 1].finishedAt!));
      }
      const firstPickup = Math.min(...statuses.map((s) => s.startedAt!)) - t0;

      // Idle workers: one job at a time, from enqueue to start.
      const idle: number[] = [];
      for (let i = 0; i < 10; i++) {
        const one = await q.enqueue({ samples: 1, seconds: 1, levels: [2], seed: 100 + i, outputDir: join(out, `idle_${i}`) });
        const [s] = await q.wait([one.jobs[0].id]);
        expect(s.state).toBe('done');
        idle.push(s.startedAt! - s.queuedAt);
      }

      console.log(
        [
          `queue load test: ${N} jobs through 2 workers in ${wallS.toFixed(1)} s (${(N / wallS).toFixed(1)} jobs/s; enqueue ${enqueueMs} ms; first start ${firstPickup} ms after enqueueing)`,
          `  jobs per worker: ${[...perWorker.values()].map((l) => l.length).join(' + ')}`,
          `  time in queue (backlog): ${ms(waited)}`,
          `  busy worker, job finished -> next started: ${ms(gaps)}`,
          `  idle worker, enqueued -> started (10 jobs one at a time): ${ms(idle)}`,
          `  Redis: ${commands} commands in all, ${(commands / N).toFixed(1)} per job`,
        ].join('\n'),
      );
      expect(percentile(gaps, 95)).toBeLessThan(1000);
      expect(percentile(idle, 95)).toBeLessThan(1000);
      expect(commands / N).toBeLessThan(200);

      // Stopping the workers (SIGTERM) while idle: clean exit, and their counts add up.
      for (const w of [a, b]) w.proc.kill('SIGTERM');
      let done = 0;
      for (const w of [a, b]) {
        expect((await w.exited).code).toBe(0);
        done += Number(/stopped: (\d+) job\(s\) done, 0 failed, 0 handed back/.exec(w.output())![1]);
      }
      expect(done).toBe(N + idle.length);

      // Samples spread over the run (the last ones too) equal generate() with the same seed,
      // two samples to a batch. (Not one batch of 200: the engine's decode takes another
      // summation order past 16 rows (csrc/cpu/matmul.cc), so a 200-sample batch can differ
      // from its samples run alone in a rare near-tie.)
      const jb = await loadJukebox();
      try {
        for (const first of [0, 98, 198]) {
          const ref = await jb.generate({ samples: 2, sampleOffset: first, seconds: 1, levels: [2], seed: SEED });
          for (const k of [0, 1]) {
            const s = statuses.find((x) => x.sample === first + k)!;
            expect(folderCodes(s.outputDir, [2]).get(2), `sample ${first + k}`).toEqual(ref.codes[2]![k]);
          }
        }
      } finally {
        jb.dispose();
      }
    } finally {
      await q.close();
    }
  }, 300_000);
});
