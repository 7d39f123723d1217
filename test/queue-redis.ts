/**
 * For the job-queue tests: a real redis-server of their own (a free loopback port, a temp
 * folder, no persistence), always killed afterwards, and `jukebox worker` processes.
 * Without redis-server installed the tests skip and say why (.ci/run installs it, and then
 * requires them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRedis } from '../lib/queue/connection.js';
import { readNpz } from '../lib/npz.js';
import { repoRoot } from './helpers/fixtures.js';

export const cli = join(repoRoot, 'bin', 'jukebox.js');
const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
export const hasRedis = probe.status === 0;
export const noRedisReason = 'redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)';
/** .ci/run sets JUKEBOX_QUEUE_REQUIRE=1 once it has installed redis-server: then a missing one fails the tests. */
export const skipQueueTests = !hasRedis && process.env.JUKEBOX_QUEUE_REQUIRE !== '1';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  if (!hasRedis) throw new Error(noRedisReason);
  const dir = mkdtempSync(join(tmpdir(), 'jukebox-redis-'));
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const url = `redis://127.0.0.1:${port}`;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const stop = async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        await checkRedis(url, 1000);
        return { url, port, stop };
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await stop().catch(() => {});
    if (tries >= 2) throw new Error(`redis-server did not start: ${out.slice(-500)}`);
  }
}

export interface WorkerProcess {
  proc: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves once the worker says it takes jobs. */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `jukebox worker` in its own process (one engine thread, so two share the 2-core machine fairly). */
export function startWorker(url: string, queue: string, extra: string[] = []): WorkerProcess {
  const proc = spawn(process.execPath, [cli, 'worker', '--redis', url, '--queue', queue, '--lock-seconds', '3', ...extra], {
    env: { ...process.env, CI: '1', JUKEBOX_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r, reject) => {
    onReady = r;
    proc.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready: ${out}`)));
  });
  ready.catch(() => {});
  const take = (b: Buffer) => {
    out += b.toString();
    if (/taking jobs from queue/.test(out)) onReady();
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return { proc, pid: proc.pid!, output: () => out, ready, exited };
}

export function killAll(workers: WorkerProcess[]): Promise<unknown> {
  for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  return Promise.all(workers.map((w) => w.exited));
}

/** codes[level] of one sample of an output folder (row `row` of its codes files). */
export function folderCodes(dir: string, levels: number[], row = 0): Map<number, Int32Array> {
  const out = new Map<number, Int32Array>();
  for (const l of levels) {
    const a = readNpz(join(dir, `codes_level_${l}.npz`))[`level_${l}`];
    const t = a.shape[1];
    out.set(l, (a.data as Int32Array).slice(row * t, (row + 1) * t));
  }
  return out;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
