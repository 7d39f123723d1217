/**
 * The explorer on a job queue (`jukebox explore DIR --redis URL`): its continue / upsample
 * jobs run on a worker through a real redis-server and give the codes the explorer's own
 * job runner gives; jobs others submitted are listed with their progress; cancel works.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog, JobInfo } from '../lib/explore/catalog-types.js';
import { startExploreServer, type ExploreServer } from '../lib/explore/server.js';
import { loadJukebox } from '../lib/generate/generate.js';
import { writeRunAudio } from '../lib/generate/run-files.js';
import { enqueueGeneration } from '../lib/queue/client.js';
import { runWorker, type WorkerSummary } from '../lib/queue/worker.js';
import { folderCodes, noRedisReason, skipQueueTests, startRedis, type TestRedis } from './queue-redis.js';

if (skipQueueTests) console.warn(`explorer-on-a-queue tests skipped: ${noRedisReason}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function call(srv: ExploreServer, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: body === undefined ? 'GET' : 'POST', headers: body === undefined ? {} : { 'Content-Type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function untilFinal(srv: ExploreServer, id: string, seen?: (j: JobInfo) => void): Promise<JobInfo> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
    const j = ((await call(srv, '/api/jobs')).json as JobInfo[]).find((x) => x.id === id);
    if (j) seen?.(j);
    if (j && (j.state === 'done' || j.state === 'failed' || j.state === 'cancelled')) return j;
  }
  throw new Error(`job ${id} did not finish`);
}

describe.skipIf(skipQueueTests)('the explorer on a job queue', () => {
  let redis: TestRedis;
  let root: string;
  let srv: ExploreServer;
  let local: ExploreServer;
  const stop = new AbortController();
  let worker: Promise<WorkerSummary>;
  const queue = 'explore';

  beforeAll(async () => {
    redis = await startRedis();
    root = mkdtempSync(join(tmpdir(), 'jukebox-queue-explore-'));
    const jb = await loadJukebox();
    try {
      const full = await jb.generate({ seconds: 2, seed: 4, outputDir: join(root, 'full') });
      await writeRunAudio(join(root, 'full'), full, 's16');
      const top = await jb.generate({ seconds: 2, seed: 3, levels: [2], outputDir: join(root, 'top') });
      await writeRunAudio(join(root, 'top'), top, 's16');
    } finally {
      jb.dispose();
    }
    worker = runWorker({ redis: redis.url, queue, lockSeconds: 2, signal: stop.signal });
    worker.catch(() => {});
    srv = await startExploreServer({ dirs: [root], queue: { redis: redis.url, queue } });
  });

  afterAll(async () => {
    stop.abort();
    await worker?.catch(() => {});
    await srv?.close();
    await local?.close();
    await redis?.stop();
  });

  it("runs upsample and continue on the queue's worker, with the codes the explorer's own runner gives", async () => {
    const c = (await call(srv, '/catalog.json')).json as Catalog;
    expect(c.queue).toEqual({ name: queue, redis: expect.stringContaining(`127.0.0.1:${redis.port}`) });
    const topSample = c.samples.find((s) => s.canUpsample)!;
    const fullSample = c.samples.find((s) => !s.canUpsample)!;

    const up = (await call(srv, '/api/jobs', { sampleId: topSample.id, action: 'upsample', fromSeconds: 0 })).json as JobInfo;
    const upDone = await untilFinal(srv, up.id);
    expect(upDone.state, upDone.message).toBe('done');
    expect(upDone.queue?.worker).toMatch(/:\d+$/);
    expect(upDone.queue?.id).toMatch(/^[0-9a-f]+-0$/);
    expect(upDone.sampleIds).toHaveLength(1);
    const made = ((await call(srv, '/catalog.json')).json as Catalog).samples.find((s) => s.id === upDone.sampleIds[0])!;
    expect(made.parent).toEqual({ sampleId: topSample.id, action: 'upsample', fromSeconds: 0 });
    expect(made.levels.map((l) => l.level)).toEqual([2, 1, 0]);
    const upDir = upDone.queue!.outputDir;
    expect(folderCodes(upDir, [2]).get(2)).toEqual(folderCodes(join(root, 'top'), [2]).get(2));

    const req = { sampleId: fullSample.id, action: 'continue', fromSeconds: 1, seconds: 3, seed: 11 };
    const cont = await untilFinal(srv, ((await call(srv, '/api/jobs', req)).json as JobInfo).id);
    expect(cont.state, cont.message).toBe('done');
    // The same job run by the explorer itself (no queue).
    local = await startExploreServer({ dirs: [root] });
    const lc = (await call(local, '/catalog.json')).json as Catalog;
    const mine = await untilFinal(local, ((await call(local, '/api/jobs', { ...req, sampleId: lc.samples.find((s) => s.runPath === fullSample.runPath)!.id })).json as JobInfo).id);
    expect(mine.state, mine.message).toBe('done');
    const localDir = join(root, mine.message.replace(/^done: /, ''));
    const a = folderCodes(cont.queue!.outputDir, [2, 1, 0]);
    const b = folderCodes(localDir, [2, 1, 0]);
    for (const l of [2, 1, 0]) expect(a.get(l), `level ${l}`).toEqual(b.get(l));
    const state = JSON.parse(readFileSync(join(cont.queue!.outputDir, 'run.json'), 'utf8')) as { parent: unknown };
    expect(state.parent).toEqual({ run: '../../full', sample: 0, action: 'continue', fromSeconds: 1 });
  }, 240_000);

  it('lists jobs others submitted, with their progress, and cancels a running one', async () => {
    const other = await enqueueGeneration({ redis: redis.url, queue, seconds: 20, levels: [2], seed: 8, outputDir: join(root, 'submitted') });
    let listed: JobInfo | undefined;
    for (let i = 0; i < 200 && !listed?.fraction; i++, await sleep(100)) {
      listed = ((await call(srv, '/api/jobs')).json as JobInfo[]).find((j) => j.queue?.id === other.jobs[0].id);
    }
    expect(listed).toMatchObject({ request: { action: 'generate', seconds: 20, seed: 8 }, state: 'running' });
    expect(listed!.fraction).toBeGreaterThan(0);
    const done = await untilFinal(srv, listed!.id);
    expect(done.state, done.message).toBe('done');
    expect(done.sampleIds).toHaveLength(1);

    const c = (await call(srv, '/catalog.json')).json as Catalog;
    const parent = c.samples.find((s) => s.runPath.endsWith('full'))!;
    const long = (await call(srv, '/api/jobs', { sampleId: parent.id, action: 'continue', fromSeconds: 1, seconds: 120 })).json as JobInfo;
    let outDir: string | undefined;
    const end = await untilFinal(srv, long.id, (j) => {
      outDir ??= j.queue?.outputDir;
      if (j.state === 'running' && j.fraction > 0 && j.message !== 'cancelling...') void call(srv, `/api/jobs/${long.id}/cancel`, {});
    });
    expect(end.state).toBe('cancelled');
    expect(outDir).toBeDefined();
    expect(end.queue?.worker).toBeTruthy();
    expect(existsSync(outDir!)).toBe(false);
  }, 240_000);
});
