/**
 * Generation jobs on a real queue (BullMQ on a real redis-server started for these tests):
 * workers as separate `jukebox worker` processes, one SIGKILLed mid-job; a worker stopped
 * with SIGTERM handing its job back; jobs that cannot succeed failing once; cancelling.
 * Every sample's codes are checked against `jukebox generate --samples N` with the same seed,
 * and every job's log against sampling any window twice. Uses the default model at short
 * lengths. Skips (and says why) without redis-server.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJukebox, type Jukebox } from '../lib/generate/generate.js';
import { levelWindows, DEFAULT_HOP_FRACTIONS } from '../lib/generate/schedule.js';
import { GenerationQueue, enqueueGeneration } from '../lib/queue/client.js';
import { runWorker } from '../lib/queue/worker.js';
import { cli, folderCodes, killAll, noRedisReason, skipQueueTests, startRedis, startWorker, type TestRedis, type WorkerProcess } from './queue-redis.js';

if (skipQueueTests) console.warn(`job queue tests skipped: ${noRedisReason}`);

const SECONDS = 3;
const SEED = 11;
const LEVELS = [2, 1, 0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runCli(args: string[]): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; stdout(): string } {
  const p = spawn(process.execPath, [cli, ...args], { env: { ...process.env, CI: '1', JUKEBOX_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return { done: new Promise((r) => p.once('exit', (code) => r({ code, stdout, stderr }))), stdout: () => stdout };
}

interface WindowLog {
  /** (attempt, level, window) of every "sampled" line. */
  sampled: { attempt: number; level: number; window: number }[];
  /** Per attempt that resumed: per level, how many leading windows were already saved. */
  saved: Map<number, Map<number, number>>;
}

function parseLog(lines: string[]): WindowLog {
  const sampled: WindowLog['sampled'] = [];
  const saved = new Map<number, Map<number, number>>();
  for (const line of lines) {
    let m = /^attempt (\d+) \S+: sampled level (\d+) window (\d+)\/(\d+)$/.exec(line);
    if (m) sampled.push({ attempt: Number(m[1]), level: Number(m[2]), window: Number(m[3]) - 1 });
    m = /^attempt (\d+) \S+: resuming: \d+ window\(s\) saved by an earlier attempt \((.*)\)/.exec(line);
    if (m) saved.set(Number(m[1]), new Map([...m[2].matchAll(/level (\d+) (\d+)\/\d+/g)].map((x) => [Number(x[1]), Number(x[2])])));
  }
  return { sampled, saved };
}

/**
 * No window sampled twice: each (level, window) appears once in the sampled lines of all
 * attempts; an attempt that resumed sampled none of the windows it found saved, and every
 * window an earlier attempt reported was among them; together they cover every window.
 */
function checkWindows(log: WindowLog, windows: Map<number, number>): { resumed: number } {
  const keys = log.sampled.map((s) => `${s.level}:${s.window}`);
  expect(new Set(keys).size, `a window was sampled twice: ${keys.join(' ')}`).toBe(keys.length);
  const covered = new Set(keys);
  let resumed = 0;
  for (const [attempt, savedByLevel] of log.saved) {
    const isSaved = (l: number, w: number) => w < (savedByLevel.get(l) ?? 0);
    for (const s of log.sampled) {
      if (s.attempt >= attempt) expect(isSaved(s.level, s.window), `attempt ${s.attempt} resampled saved window ${s.level}:${s.window}`).toBe(false);
      else expect(isSaved(s.level, s.window), `window ${s.level}:${s.window} of attempt ${s.attempt} was not saved`).toBe(true);
    }
    for (const [l, n] of savedByLevel) for (let w = 0; w < n; w++) covered.add(`${l}:${w}`);
    resumed = [...savedByLevel.values()].reduce((a, b) => a + b, 0);
  }
  const all = [...windows].flatMap(([l, n]) => Array.from({ length: n }, (_, w) => `${l}:${w}`));
  expect([...covered].sort()).toEqual(all.sort());
  return { resumed };
}

describe.skipIf(skipQueueTests)('job queue: BullMQ on a real redis-server', () => {
  let redis: TestRedis;
  let root: string;
  let jb: Jukebox;
  const workers: WorkerProcess[] = [];
  /** `jukebox generate --samples 3 --seed 11 --seconds 3`: the reference every job must equal. */
  let reference: Promise<string>;
  /** Windows per level of one sample of that run. */
  const windows = new Map<number, number>();

  beforeAll(async () => {
    redis = await startRedis();
    root = mkdtempSync(join(tmpdir(), 'jukebox-queue-'));
    const ref = join(root, 'reference');
    const gen = runCli(['generate', '--seconds', String(SECONDS), '--samples', '3', '--seed', String(SEED), '-o', ref]);
    reference = gen.done.then((r) => {
      if (r.code !== 0) throw new Error(`generate failed: ${r.stderr}`);
      return ref;
    });
    reference.catch(() => {});
    jb = await loadJukebox();
    const vq = jb.vqvae;
    const sampleLength = Math.floor((SECONDS * vq.sampleRate) / vq.hopLengths[2]) * vq.hopLengths[2];
    for (const l of LEVELS) {
      const s = jb.priors[l]!.structure;
      windows.set(l, levelWindows(sampleLength / s.rawToTokens, s.nCtx, DEFAULT_HOP_FRACTIONS[l]).length);
    }
  });

  afterAll(async () => {
    await killAll(workers);
    jb?.dispose();
    await redis?.stop();
  });

  it('two workers, three jobs, one worker SIGKILLed mid-job: every job finishes, codes equal generate, no window sampled twice', async () => {
    const queue = 'kill';
    const a = startWorker(redis.url, queue);
    const b = startWorker(redis.url, queue);
    workers.push(a, b);
    await Promise.all([a.ready, b.ready]);
    const out = join(root, 'kill');
    const t0 = performance.now();
    const submit = runCli(['submit', '--redis', redis.url, '--queue', queue, '--seconds', String(SECONDS), '--samples', '3', '--seed', String(SEED), '-o', out, '--wait']);
    let finished = false;
    void submit.done.then(() => (finished = true));
    const q = await GenerationQueue.open({ redis: redis.url, queue });
    try {
      // Kill whichever worker is first seen a few windows into a job's upsampling (so
      // windows of two levels are saved).
      let killed: { id: string; pid: number } | undefined;
      while (!killed && !finished) {
        for (const s of await q.list()) {
          const p = s.progress;
          if (s.state === 'running' && p?.phase === 'sample' && (p.level === 0 || (p.level === 1 && p.window >= 2)) && (p.pid === a.pid || p.pid === b.pid)) {
            process.kill(p.pid, 'SIGKILL');
            killed = { id: s.id, pid: p.pid };
            break;
          }
        }
        await sleep(50);
      }
      expect(killed, 'no job was seen mid-way to kill its worker').toBeDefined();
      const victim = killed!.pid === a.pid ? a : b;
      expect((await victim.exited).signal).toBe('SIGKILL');
      const r = await submit.done;
      const wall = (performance.now() - t0) / 1000;
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toMatch(/all 3 job\(s\) done/);
      const ids = [...r.stdout.matchAll(/^(\S+-\d+) -> /gm)].map((m) => m[1]);
      expect(ids).toHaveLength(3);

      const ref = await reference;
      const statuses = await q.status(ids);
      const lines: string[] = [];
      for (const s of statuses) {
        expect(s.state).toBe('done');
        const dir = join(out, `sample_${s.sample}`);
        expect(s.outputDir).toBe(dir);
        // exactly what generate writes, for one sample
        for (const f of ['run.json', 'sample_0.wav', 'level_1_sample_0.wav', 'level_2_sample_0.wav', 'codes_level_0.npz', 'codes_level_1.npz', 'codes_level_2.npz']) {
          expect(existsSync(join(dir, f)), f).toBe(true);
        }
        const state = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { seed: number; samples: number; sampleOffset?: number };
        expect([state.seed, state.samples, state.sampleOffset ?? 0]).toEqual([SEED, 1, s.sample]);
        const mine = folderCodes(dir, LEVELS);
        const theirs = folderCodes(ref, LEVELS, s.sample);
        for (const l of LEVELS) expect(mine.get(l), `sample ${s.sample} level ${l}`).toEqual(theirs.get(l));

        const log = parseLog(await q.logs(s.id));
        const { resumed } = checkWindows(log, windows);
        const total = [...windows.values()].reduce((x, y) => x + y, 0);
        if (s.id === killed!.id) {
          expect(s.starts).toBeGreaterThanOrEqual(2);
          expect(resumed, 'the job taken over found no saved window').toBeGreaterThan(0);
          expect(s.result!.resumedWindows).toBe(resumed);
          expect(s.result!.worker).not.toContain(`:${killed!.pid}`);
        } else {
          expect(s.starts).toBe(1);
          expect(log.sampled).toHaveLength(total);
        }
        expect(s.result!.sampledWindows + s.result!.resumedWindows).toBe(total);
        lines.push(`job ${s.id}: ${s.starts} start(s); windows: ${total} in all, ${log.sampled.length} sampled over all starts (${s.result!.sampledWindows} by the last), ${resumed} found saved by the last start; finished on ${s.result!.worker}`);
      }
      console.log(`queue kill test: 3 jobs of ${SECONDS} s through 2 workers (one SIGKILLed mid-job on ${killed!.id}) in ${wall.toFixed(1)} s\n  ${lines.join('\n  ')}`);
    } finally {
      await q.close();
    }
    await killAll([a, b]);
  }, 240_000);

  it('SIGTERM hands the running job back: the worker exits 0 at once, the next one resumes it (API worker)', async () => {
    const queue = 'handback';
    const a = startWorker(redis.url, queue);
    workers.push(a);
    await a.ready;
    const out = join(root, 'handback');
    const run = await enqueueGeneration({ redis: redis.url, queue, seconds: SECONDS, seed: SEED, outputDir: out });
    expect(run.jobs).toEqual([{ id: `${run.run}-0`, sample: 0, outputDir: out }]);
    const q = await GenerationQueue.open({ redis: redis.url, queue });
    try {
      const id = run.jobs[0].id;
      for (;;) {
        const [s] = await q.status([id]);
        if (s.state === 'done') throw new Error('the job finished before it could be stopped');
        if (s.progress?.phase === 'sample' && s.progress.level <= 1) break;
        await sleep(50);
      }
      const t = performance.now();
      a.proc.kill('SIGTERM');
      const exit = await a.exited;
      expect(exit.code).toBe(0);
      expect((performance.now() - t) / 1000).toBeLessThan(10);
      expect(a.output()).toMatch(/handed back to the queue/);
      expect(a.output()).toMatch(/stopped: 0 job\(s\) done, 0 failed, 1 handed back/);
      const [back] = await q.status([id]);
      expect(back.state).toBe('queued');

      // The next worker (this process, through the API) resumes it.
      const events: string[] = [];
      const summary = await runWorker({ redis: redis.url, queue, lockSeconds: 2, maxJobs: 1, onEvent: (e) => events.push(e.type) });
      expect(summary).toMatchObject({ completed: 1, failed: 0, handedBack: 0 });
      expect(events).toEqual(expect.arrayContaining(['ready', 'job-started', 'job-resumed', 'job-done']));
      const [done] = await q.status([id]);
      expect(done.state).toBe('done');
      expect(done.starts).toBe(2);
      const { resumed } = checkWindows(parseLog(await q.logs(id)), windows);
      expect(resumed).toBeGreaterThan(0);
      const ref = await reference;
      const mine = folderCodes(out, LEVELS);
      const theirs = folderCodes(ref, LEVELS, 0);
      for (const l of LEVELS) expect(mine.get(l), `level ${l}`).toEqual(theirs.get(l));
    } finally {
      await q.close();
    }
  }, 240_000);

  it('a job that cannot succeed fails once with its error (bad artist, missing model); --wait exits 1 with the reason; cancel stops a running job', async () => {
    const queue = 'fail';
    const stop = new AbortController();
    const failures: string[] = [];
    const worker = runWorker({ redis: redis.url, queue, lockSeconds: 2, signal: stop.signal, onEvent: (e) => e.type === 'job-failed' && failures.push(`${e.reason} retry=${e.willRetry}`) });
    worker.catch(() => {});
    const q = await GenerationQueue.open({ redis: redis.url, queue });
    try {
      const bad = await runCli(['submit', '--redis', redis.url, '--queue', queue, '--seconds', '1', '--levels', '2', '--artist', 'no_such_artist', '-o', join(root, 'bad'), '--wait']).done;
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^jukebox: error: 1 of 1 job\(s\) failed; job \S+ \(sample 0\): unknown artist "no_such_artist".*\[ERR_INVALID_ARGUMENT\]$/m);
      const noModel = await runCli(['submit', '--redis', redis.url, '--queue', queue, '--seconds', '1', '--samples', '2', '--model', join(root, 'no-such-model'), '-o', join(root, 'nomodel'), '--wait']).done;
      expect(noModel.code).toBe(1);
      expect(noModel.stderr).toMatch(/jukebox: error: 2 of 2 job\(s\) failed; .*no-such-model does not exist \[ERR_MODEL_SET\]/);
      const ids = [...(bad.stdout + noModel.stdout).matchAll(/^(\S+-\d+) -> /gm)].map((m) => m[1]);
      expect(ids).toHaveLength(3);
      for (const s of await q.status(ids)) {
        expect(s.state).toBe('failed');
        expect(s.starts).toBe(1); // once: no retry loop
      }
      expect(failures).toHaveLength(3);
      for (const f of failures) expect(f).toMatch(/retry=false$/);

      // Cancel: a long job, stopped once it runs.
      const long = await enqueueGeneration({ redis: redis.url, queue, seconds: 30, levels: [2], seed: 3, outputDir: join(root, 'cancel') });
      const id = long.jobs[0].id;
      while ((await q.status([id]))[0].progress?.phase !== 'sample') await sleep(50);
      expect(await q.cancel(id)).toBe('cancelling');
      const [c] = await q.wait([id]);
      expect(c.state).toBe('failed');
      expect(c.error).toEqual({ message: 'cancelled', code: 'ERR_ABORTED' });
      expect(c.starts).toBe(1);
      stop.abort();
      expect(await worker).toMatchObject({ completed: 0, failed: 4, handedBack: 0 });
      // with no worker left, a job stays queued, and cancelling it removes it
      const queued = await q.enqueue({ seconds: 1, levels: [2], outputDir: join(root, 'never'), samples: 1 });
      expect(await q.cancel(queued.jobs[0].id)).toBe('removed');
      expect((await q.status([queued.jobs[0].id]))[0].state).toBe('missing');
    } finally {
      stop.abort();
      await q.close();
    }
  }, 240_000);

  it('submit and worker fail at once, with what to do, when Redis cannot be reached', async () => {
    const r = await runCli(['submit', '--redis', 'redis://127.0.0.1:1', '--seconds', '1', '-o', join(root, 'x')]).done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^jukebox: error: cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*redis-server.*\[ERR_IO\]$/m);
    const w = await runCli(['worker', '--redis', 'http://127.0.0.1:1']).done;
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/redis:\/\/ or rediss:\/\/ URL.*\[ERR_INVALID_ARGUMENT\]/);
  });
});
