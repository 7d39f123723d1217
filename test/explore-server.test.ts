/**
 * The explorer's server without a browser: the catalogue of fixture output folders, files
 * with byte ranges, drawn images, the refusals (paths outside the folders, foreign Host and
 * Origin headers), jobs (upsample, continue, cancel, a client that goes away mid-job) and
 * the static export. And the hardening: nothing from an explored folder is served (or
 * exported) as a type a browser executes, uploads stream to disk under a global bound, and
 * uploaded audio is decoded in a worker with limits.
 */
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExploreServer, type ExploreServer } from '../lib/explore/server.js';
import { exportSite } from '../lib/explore/export.js';
import type { Catalog, JobInfo, SampleEntry } from '../lib/explore/catalog-types.js';
import { readNpz, writeNpz, type NpzWritableArray } from '../lib/npz.js';
import { encodeWav, parseWav } from '../lib/audio/wav.js';
import { exportRefusal } from '../lib/explore/file-types.js';
import { webAssetsDir } from '../lib/explore/web-assets.js';
import { LYRICS, makeExploreRuns, type ExploreRuns } from './helpers/explore-runs.js';
import { repoRoot } from './helpers/fixtures.js';

const bin = join(repoRoot, 'bin', 'jukebox.js');

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-explore-'));
let runs: ExploreRuns;
let srv: ExploreServer;

beforeAll(async () => {
  runs = await makeExploreRuns(tmp);
  // A link inside the root that leads out of it, and a file outside every root.
  writeFileSync(join(tmp, 'secret.txt'), 'not for the page');
  symlinkSync(tmp, join(runs.root, 'escape'));
  srv = await startExploreServer({ dirs: [runs.root] });
}, 120_000);

afterAll(async () => {
  await srv?.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw request: the path is sent exactly as written (no URL normalisation). */
function http(path: string, o: { method?: string; headers?: Record<string, string>; body?: string; server?: ExploreServer } = {}): Promise<Reply> {
  const u = new URL((o.server ?? srv).url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: o.method ?? 'GET', headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const json = <T>(r: Reply) => JSON.parse(r.body.toString('utf8')) as T;
const post = (path: string, body: unknown) => http(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

async function catalog(): Promise<Catalog> {
  return json<Catalog>(await http('/catalog.json'));
}

/** Follows a job's event stream to its end; returns every JobInfo received. */
function follow(id: string, onEvent?: (j: JobInfo, destroy: () => void) => void): Promise<JobInfo[]> {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const events: JobInfo[] = [];
    const req = request({ host: u.hostname, port: u.port, path: `/api/jobs/${id}/events` }, (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const j = JSON.parse(data.slice(6)) as JobInfo;
          events.push(j);
          onEvent?.(j, () => {
            req.destroy();
            resolve(events);
          });
        }
      });
      res.on('end', () => resolve(events));
    });
    req.on('error', (e) => (events.length ? resolve(events) : reject(e)));
    req.end();
  });
}

async function waitForJob(id: string, timeoutMs = 60_000): Promise<JobInfo> {
  const t0 = Date.now();
  for (;;) {
    const j = json<JobInfo[]>(await http('/api/jobs')).find((x) => x.id === id)!;
    if (j.state !== 'queued' && j.state !== 'running') return j;
    if (Date.now() - t0 > timeoutMs) throw new Error(`job ${id} still ${j.state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('catalogue', () => {
  it('lists every sample of the output folders with its metadata, levels and alignment', async () => {
    const c = await catalog();
    expect(c.version).toBe(1);
    expect(c.live).toBe(true);
    expect(c.problems).toEqual([]);
    expect(c.samples).toHaveLength(3);
    const lyr = c.samples.filter((s) => s.runPath.endsWith('lyrics')).sort((a, b) => a.index - b.index);
    expect(lyr.map((s) => s.index)).toEqual([0, 1]);
    const s = lyr[0];
    expect(s).toMatchObject({ artist: 'The Testers', genre: 'blues', lyrics: LYRICS, seed: 5, model: 'top.safetensors', sampleRate: 44100, canUpsample: false, parent: null });
    expect(s.duration).toBeCloseTo(66048 / 44100, 6);
    expect(s.settings).toMatchObject({ temperature: 0.99, topK: 0, topP: 0, levels: [2, 1], totalSeconds: 30, primedSeconds: 0, samples: 2 });
    expect(s.levels.map((l) => [l.level, l.label])).toEqual([[2, 'top'], [1, 'middle']]);
    expect(s.levels[1].audioUrl).toBe('files/0/lyrics/sample_0.wav');
    expect(s.levels[0].audioUrl).toBe('files/0/lyrics/level_2_sample_0.wav');
    expect(s.levels[0].peaks.min).toHaveLength(1000);
    expect(Math.max(...s.levels[0].peaks.max)).toBeGreaterThan(0);
    expect(s.codes.map((x) => x.level)).toEqual([2, 1]);
    // The alignment: the lyrics as the model saw them, one focus per top-level token.
    expect(s.alignment!.text).toBe(LYRICS);
    expect(s.alignment!.tokensPerSecond).toBeCloseTo(44100 / 128, 6);
    expect(s.alignment!.focus).toHaveLength(66048 / 128);
    expect(s.alignment!.focus.every((f) => f >= -1 && f < LYRICS.length)).toBe(true);
    expect(s.alignment!.focus.some((f) => f >= 0)).toBe(true);
    const top = c.samples.find((x) => x.runPath.endsWith('top-only'))!;
    expect(top).toMatchObject({ genre: 'rock', lyrics: null, alignment: null, canUpsample: true });
    expect(top.levels.map((l) => l.level)).toEqual([2]);
    expect(top.levels[0].audioUrl).toBe('files/0/top-only/sample_0.wav');
  });

  it('serves catalog.js for the page, and the page itself', async () => {
    const js = await http('/catalog.js');
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.body.toString()).toMatch(/^window\.__JUKEBOX_CATALOG__ = \{/);
    const html = await http('/');
    expect(html.status).toBe(200);
    expect(html.body.toString()).toContain('app.js');
    expect(html.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await http('/app.js')).status).toBe(200);
  });

  it('binds to 127.0.0.1 by default', () => {
    const a = srv.server.address();
    expect(typeof a === 'object' && a?.address).toBe('127.0.0.1');
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });
});

describe('files', () => {
  it('serves audio whole and by byte range', async () => {
    const whole = await http('/files/0/lyrics/sample_0.wav');
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe('audio/wav');
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.body.equals(readFileSync(join(runs.withLyrics, 'sample_0.wav')))).toBe(true);
    const part = await http('/files/0/lyrics/sample_0.wav', { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${whole.body.length}`);
    expect(part.body.equals(whole.body.subarray(100, 200))).toBe(true);
    const tail = await http('/files/0/lyrics/sample_0.wav', { headers: { Range: 'bytes=-10' } });
    expect(tail.body.equals(whole.body.subarray(-10))).toBe(true);
    expect((await http('/files/0/lyrics/sample_0.wav', { headers: { Range: `bytes=${whole.body.length}-` } })).status).toBe(416);
    const codes = await http('/files/0/lyrics/codes_level_2.npz');
    expect(codes.status).toBe(200);
  });

  it('draws spectrograms and alignment heatmaps as PNG', async () => {
    const c = await catalog();
    const s = c.samples.find((x) => x.alignment)!;
    for (const url of [s.levels[0].spectrogramUrl, s.alignment!.heatmapUrl]) {
      const r = await http(`/${url}`);
      expect(r.status, url).toBe(200);
      expect(r.headers['content-type']).toBe('image/png');
      expect(r.body.subarray(1, 4).toString()).toBe('PNG');
    }
    expect((await http('/derived/heatmap/0/top-only/sample_0.png')).status).toBe(404);
  });

  it.each([
    '/files/0/../../secret.txt',
    '/files/0/%2e%2e/secret.txt',
    '/files/0/..%2fsecret.txt',
    '/files/0/lyrics%2f..%2f..%2fsecret.txt',
    '/files/0/escape/secret.txt',
    '/files/0/lyrics/..%5c..%5csecret.txt',
    '/files/0/lyrics/%00sample_0.wav',
    '/files/1/secret.txt',
    '/files/../secret.txt',
    '/files/%2e%2e/secret.txt',
    '/derived/spectrogram/0/escape/secret.txt.wav.png',
    '/derived/heatmap/0/escape/sample_0.png',
  ])('refuses %s (outside the explored folders)', async (path) => {
    const r = await http(path);
    expect([400, 403, 404]).toContain(r.status);
    expect(r.body.toString()).not.toContain('not for the page');
  });

  it('answers only requests addressed to itself', async () => {
    const r = await http('/catalog.json', { headers: { Host: 'evil.example:80' } });
    expect(r.status).toBe(403);
    const cross = await http('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' }, body: '{}' });
    expect(cross.status).toBe(403);
    const form = await http('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
    expect(form.status).toBe(415);
  });
});

describe('jobs', () => {
  it('refuses bad requests with a message', async () => {
    const c = await catalog();
    const s = c.samples.find((x) => x.alignment)!;
    const cases: [unknown, RegExp][] = [
      [{ sampleId: 'nope~0', action: 'continue', fromSeconds: 1, seconds: 2 }, /no sample/],
      [{ sampleId: s.id, action: 'remix', fromSeconds: 1 }, /action/],
      [{ sampleId: s.id, action: 'continue', fromSeconds: 1, seconds: 0.5 }, /more than fromSeconds/],
      [{ sampleId: s.id, action: 'continue', fromSeconds: 'x', seconds: 2 }, /number/],
    ];
    for (const [body, msg] of cases) {
      const r = await post('/api/jobs', body);
      expect(r.status).toBe(400);
      expect(json<{ error: string }>(r).error).toMatch(msg);
    }
    const notJson = await http('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
  });

  it('upsamples a top-level-only sample, reporting progress, and lists the result with its parent', async () => {
    const before = await catalog();
    const parent = before.samples.find((x) => x.canUpsample)!;
    const r = await post('/api/jobs', { sampleId: parent.id, action: 'upsample', fromSeconds: 0 });
    expect(r.status).toBe(201);
    const job = json<JobInfo>(r);
    const events = await follow(job.id);
    const last = events[events.length - 1];
    expect(last.state, last.message).toBe('done');
    expect(events.some((e) => e.state === 'running' && e.fraction > 0 && e.fraction < 1)).toBe(true);
    expect(last.sampleIds).toHaveLength(1);
    const after = await catalog();
    const made = after.samples.find((x) => x.id === last.sampleIds[0])!;
    expect(made.parent).toEqual({ sampleId: parent.id, action: 'upsample', fromSeconds: 0 });
    expect(made.levels.map((l) => l.level)).toEqual([2, 1]);
    expect(made.duration).toBeCloseTo(parent.duration, 6);
    expect(made.settings.levels).toEqual([1]);
    // The top level is the parent's, untouched.
    const runDir = join(runs.root, made.runPath.slice(runs.root.length + 1));
    const mine = readNpz(join(runDir, 'codes_level_2.npz')).level_2.data;
    const theirs = readNpz(join(runs.topOnly, 'codes_level_2.npz')).level_2.data;
    expect(Array.from(mine as Int32Array)).toEqual(Array.from(theirs as Int32Array));
    expect(readdirSync(runDir)).toContain('sample_0.wav');
  });

  it('continues a sample from a chosen time: the codes before it are kept at every level', async () => {
    const c = await catalog();
    const parent = c.samples.find((x) => x.alignment && x.index === 1)!;
    const r = await post('/api/jobs', { sampleId: parent.id, action: 'continue', fromSeconds: 0.7, seconds: 2.2, seed: 11 });
    expect(r.status).toBe(201);
    const done = await waitForJob(json<JobInfo>(r).id);
    expect(done.state, done.message).toBe('done');
    const made = (await catalog()).samples.find((x) => x.id === done.sampleIds[0])!;
    expect(made.parent).toEqual({ sampleId: parent.id, action: 'continue', fromSeconds: 0.7 });
    expect(made.duration).toBeCloseTo((Math.floor((2.2 * 44100) / 128) * 128) / 44100, 6);
    expect(made.alignment).not.toBeNull();
    expect(made.lyrics).toBe(LYRICS);
    const runDir = join(runs.root, made.runPath.slice(runs.root.length + 1));
    const keepTop = Math.floor((0.7 * 44100) / 128);
    for (const [level, hop] of [[2, 128], [1, 32]] as const) {
      const mine = readNpz(join(runDir, `codes_level_${level}.npz`))[`level_${level}`];
      const theirs = readNpz(join(runs.withLyrics, `codes_level_${level}.npz`))[`level_${level}`];
      const keep = (keepTop * 128) / hop;
      const t = theirs.shape[1];
      expect(mine.shape).toEqual([1, Math.floor((2.2 * 44100) / 128) * (128 / hop)]);
      expect(Array.from((mine.data as Int32Array).subarray(0, keep))).toEqual(Array.from((theirs.data as Int32Array).subarray(t, t + keep)));
    }
    const wav = parseWav(readFileSync(join(runDir, 'sample_0.wav')));
    expect(wav.channels[0].length).toBe(Math.floor((2.2 * 44100) / 128) * 128);
  });

  it('cancels a running job and removes its partial output', async () => {
    const c = await catalog();
    const parent = c.samples.find((x) => x.alignment)!;
    const jobsDir = join(runs.root, 'explore-jobs');
    const before = readdirSync(jobsDir).length;
    const r = await post('/api/jobs', { sampleId: parent.id, action: 'continue', fromSeconds: 0.5, seconds: 120 });
    const id = json<JobInfo>(r).id;
    const events = await follow(id, (j) => {
      if (j.state === 'running' && j.fraction > 0) void post(`/api/jobs/${id}/cancel`, {});
    });
    const last = events[events.length - 1];
    expect(last.state).toBe('cancelled');
    expect(readdirSync(jobsDir).length).toBe(before);
    expect((await catalog()).samples.length).toBe(c.samples.length);
  });

  it('keeps running when the page that started a job goes away mid-job', async () => {
    const c = await catalog();
    const parent = c.samples.find((x) => x.alignment)!;
    const r = await post('/api/jobs', { sampleId: parent.id, action: 'continue', fromSeconds: 0.5, seconds: 3 });
    const id = json<JobInfo>(r).id;
    // The client drops its connection at the first progress event.
    await follow(id, (j, destroy) => {
      if (j.state === 'running') destroy();
    });
    expect((await http('/catalog.json')).status).toBe(200);
    const done = await waitForJob(id);
    expect(done.state, done.message).toBe('done');
    expect((await catalog()).samples.some((s) => s.id === done.sampleIds[0])).toBe(true);
  });
});

describe('prime jobs (your own audio)', () => {
  const upload = (body: Buffer, type = 'audio/wav', name = 'my%20song.wav') => http('/api/primes', { method: 'POST', headers: { 'Content-Type': type, 'X-Filename': name }, body: body as unknown as string });

  it('takes an uploaded file and continues its first seconds into a new song', async () => {
    const wav = readFileSync(join(runs.withLyrics, 'sample_1.wav'));
    const up = await upload(wav);
    expect(up.status).toBe(201);
    const prime = json<{ id: string; name: string; duration: number }>(up);
    expect(prime.name).toBe('my_song.wav');
    expect(prime.duration).toBeCloseTo(66048 / 44100, 2);
    const r = await post('/api/jobs', { action: 'prime', prime: prime.id, fromSeconds: 0.5, seconds: 2, artist: 'The Testers', genre: 'rock', lyrics: 'la la la', seed: 4 });
    expect(r.status, r.body.toString()).toBe(201);
    const done = await waitForJob(json<JobInfo>(r).id);
    expect(done.state, done.message).toBe('done');
    const made = (await catalog()).samples.find((x) => x.id === done.sampleIds[0])!;
    expect(made).toMatchObject({ artist: 'The Testers', genre: 'rock', lyrics: 'la la la', seed: 4, parent: null });
    expect(made.settings.primedSeconds).toBeCloseTo(0.5, 4);
    expect(made.duration).toBeCloseTo((Math.floor((2 * 44100) / 128) * 128) / 44100, 6);
    // The uploads folder is not an output folder: nothing from it is listed.
    expect((await catalog()).samples.some((x) => x.runPath.includes('primes'))).toBe(false);
  });

  it('refuses what is not audio, the wrong content type, unknown ids and too long a start', async () => {
    const bad = await upload(Buffer.from('this is not a wav file at all, just text'), 'audio/wav', 'notes.wav');
    expect(bad.status).toBe(400);
    expect(json<{ error: string }>(bad).error).toMatch(/notes\.wav is not audio/);
    expect((await upload(Buffer.from('x'), 'text/plain')).status).toBe(415);
    expect((await upload(Buffer.alloc(0))).status).toBe(400);
    const unknown = await post('/api/jobs', { action: 'prime', prime: 'feedbeef', fromSeconds: 1, seconds: 3 });
    expect(json<{ error: string }>(unknown).error).toMatch(/upload the audio first/);
    const up = json<{ id: string }>(await upload(readFileSync(join(runs.topOnly, 'sample_0.wav'))));
    const long = await post('/api/jobs', { action: 'prime', prime: up.id, fromSeconds: 9, seconds: 12 });
    expect(json<{ error: string }>(long).error).toMatch(/only 1\.50 s long/);
  });
});

describe('no active content from the explored folders', () => {
  // What a shared run folder could hold to run script with the page's rights: pages and
  // scripts of every kind, and files named like the page's own.
  const PLANTED: Record<string, string> = {
    'evil.html': '<!doctype html><script src="evil.js"></script>',
    'evil.htm': '<!doctype html><script src="evil.js"></script>',
    'evil.xhtml': '<html xmlns="http://www.w3.org/1999/xhtml"><script src="evil.js"></script></html>',
    'evil.svg': '<svg xmlns="http://www.w3.org/2000/svg"><script href="evil.js"/></svg>',
    'evil.js': 'document.title = "pwned";',
    'evil.mjs': 'document.title = "pwned";',
    'SHOUT.HTML': '<!doctype html><script src="evil.js"></script>',
    'evil.css': 'body { background: red }',
    'app.js': 'document.title = "pwned";',
    'index.html': '<!doctype html><title>planted</title><script src="app.js"></script>',
  };
  let planted: string;
  beforeAll(() => {
    planted = join(runs.root, 'planted');
    mkdirSync(planted, { recursive: true });
    for (const [name, text] of Object.entries(PLANTED)) writeFileSync(join(planted, name), text);
    // ... at the top of the root too, where /app.js or /index.html would find them if the
    // server ever looked in the folders for its own files.
    writeFileSync(join(runs.root, 'app.js'), PLANTED['app.js']);
    writeFileSync(join(runs.root, 'index.html'), PLANTED['index.html']);
  });

  it.each(Object.keys(PLANTED))('serves a planted %s only as a download', async (name) => {
    {
      const path = `/files/0/planted/${name}`;
      const r = await http(path);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.headers['content-disposition']).toMatch(/^attachment; filename="/);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      // Should a browser render it anyway, as a document in a unique origin that may run nothing.
      expect(r.headers['content-security-policy']).toMatch(/^sandbox; default-src 'none'/);
      expect(r.body.toString()).toBe(PLANTED[name]);
    }
  });

  it('serves the page only from the package, whatever the folders hold', async () => {
    const assets = webAssetsDir();
    const page = await http('/');
    expect(page.body.equals(readFileSync(join(assets, 'index.html')))).toBe(true);
    expect((await http('/index.html')).body.equals(readFileSync(join(assets, 'index.html')))).toBe(true);
    const app = await http('/app.js');
    expect(app.headers['content-type']).toMatch(/^text\/javascript/);
    expect(app.body.equals(readFileSync(join(assets, 'app.js')))).toBe(true);
    for (const path of ['/files/0/app.js', '/files/0/index.html']) {
      const r = await http(path);
      expect(r.headers['content-type'], path).toBe('application/octet-stream');
      expect(r.headers['content-disposition'], path).toMatch(/^attachment/);
    }
    // catalog.js is made by the server; a planted one is only a file under files/.
    writeFileSync(join(runs.root, 'catalog.js'), PLANTED['app.js']);
    expect((await http('/catalog.js')).body.toString()).toMatch(/^window\.__JUKEBOX_CATALOG__ = /);
    expect((await http('/files/0/catalog.js')).headers['content-type']).toBe('application/octet-stream');
    rmSync(join(runs.root, 'catalog.js'));
  });

  it('serves what the page uses as inert types: WAV audio, codes as a download, JSON', async () => {
    const wav = await http('/files/0/lyrics/sample_0.wav');
    expect(wav.headers['content-type']).toBe('audio/wav');
    expect(wav.headers['content-disposition']).toBe('inline; filename="sample_0.wav"');
    expect(wav.headers['x-content-type-options']).toBe('nosniff');
    const npz = await http('/files/0/lyrics/codes_level_2.npz');
    expect(npz.headers['content-type']).toBe('application/octet-stream');
    expect(npz.headers['content-disposition']).toMatch(/^attachment/);
    expect((await http('/files/0/lyrics/run.json')).headers['content-type']).toMatch(/^application\/json/);
    // The type comes from the name asked for: a .wav link to a planted page is still audio.
    symlinkSync(join(planted, 'evil.html'), join(planted, 'sample_0.wav'));
    const link = await http('/files/0/planted/sample_0.wav');
    expect(link.headers['content-type']).toBe('audio/wav');
    expect(link.headers['x-content-type-options']).toBe('nosniff');
    rmSync(join(planted, 'sample_0.wav'));
  });

  it('keeps an upload as <id>.<ext> from its container, the client name only as sanitised text', async () => {
    const primes = join(runs.root, 'explore-jobs', 'primes');
    const before = new Set(existsSync(primes) ? readdirSync(primes) : []);
    const wav = readFileSync(join(runs.topOnly, 'sample_0.wav'));
    const r = await http('/api/primes', { method: 'POST', headers: { 'Content-Type': 'audio/wav', 'X-Filename': encodeURIComponent('../<b>x</b>.html') }, body: wav as unknown as string });
    expect(r.status, r.body.toString()).toBe(201);
    const info = json<{ id: string; name: string }>(r);
    expect(info.name).toMatch(/^[\w.-]+$/);
    const added = readdirSync(primes).filter((f) => !before.has(f));
    expect(added).toEqual([`${info.id}.wav`]);
    expect(info.id).toMatch(/^[0-9a-f]{16}$/);
    const served = await http(`/files/0/explore-jobs/primes/${info.id}.wav`);
    expect(served.headers['content-type']).toBe('audio/wav');
  });

  it('exports only inert files whose content matches their type, and names what it left out', async () => {
    const site = join(tmp, 'planted-site');
    await exportSite({ dirs: [runs.root], out: site });
    // Nothing but the page's own files and the types the page uses, anywhere in the site.
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name).slice(site.length + 1)]));
    for (const f of walk(site)) {
      if (['index.html', 'app.js', 'app.css', 'catalog.js', 'catalog.json'].includes(f)) continue;
      expect(f).toMatch(/\.(wav|npz|png|json)$/);
    }
    expect(readFileSync(join(site, 'app.js')).equals(readFileSync(join(webAssetsDir(), 'app.js')))).toBe(true);
    expect(readFileSync(join(site, 'index.html')).equals(readFileSync(join(webAssetsDir(), 'index.html')))).toBe(true);
    // The check behind it: by name, then by content.
    expect(exportRefusal('evil.html', join(planted, 'evil.html'))).toMatch(/only .*wav/);
    expect(exportRefusal('sample_0.wav', join(planted, 'evil.html'))).toMatch(/not WAV/);
    expect(exportRefusal('sample_0.wav', join(runs.withLyrics, 'sample_0.wav'))).toBeUndefined();
    expect(exportRefusal('codes_level_2.npz', join(runs.withLyrics, 'codes_level_2.npz'))).toBeUndefined();
  });
});

/** A WAV of `frames` samples that declares `rate` Hz. */
const wavAt = (rate: number, frames: number) => encodeWav(new Float32Array(frames).map((_, i) => 0.3 * Math.sin(i / 3)), rate, 's16');

interface Streamed {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  written: number;
}

/**
 * POSTs `total` bytes to api/primes from one reused chunk, with backpressure, so the client
 * holds no more than the chunk; stops sending once answered (as a browser's fetch gives up).
 * `declare` sends a Content-Length (else the body is chunked); `abortAfter` drops the
 * connection after that many bytes, unanswered.
 */
function streamUpload(server: ExploreServer, total: number, o: { declare?: boolean; abortAfter?: number } = {}): Promise<Streamed | 'aborted'> {
  const port = (server.server.address() as AddressInfo).port;
  const chunk = Buffer.alloc(256 * 1024, 0x41);
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'X-Filename': 'big.wav' };
    if (o.declare) headers['Content-Length'] = String(total);
    const req = request({ host: '127.0.0.1', port, path: '/api/primes', method: 'POST', headers }, (res) => {
      answered = true;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body, written });
        req.destroy();
      });
      res.on('error', () => resolve({ status: res.statusCode!, headers: res.headers, body, written }));
    });
    // After an answer the server may cut the rest of the body off: not a failure.
    req.on('error', (e) => (answered ? undefined : o.abortAfter !== undefined ? resolve('aborted') : reject(e)));
    const pump = () => {
      while (!answered && !req.destroyed && written < total) {
        if (o.abortAfter !== undefined && written >= o.abortAfter) {
          req.destroy();
          return resolve('aborted');
        }
        const n = Math.min(chunk.length, total - written);
        written += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      if (!answered && !req.destroyed && written >= total) req.end();
    };
    pump();
  });
}

/** Times GET api/jobs answers while `during` runs: the longest, in ms. */
async function probeWhile<T>(server: ExploreServer, during: Promise<T>): Promise<{ result: T; worstMs: number; probes: number }> {
  let done = false;
  let worstMs = 0;
  let probes = 0;
  const loop = (async () => {
    while (!done) {
      const t0 = performance.now();
      const r = await http('/api/jobs', { server });
      expect(r.status).toBe(200);
      worstMs = Math.max(worstMs, performance.now() - t0);
      probes++;
      await new Promise((next) => setTimeout(next, 20));
    }
  })();
  const result = await during.finally(() => (done = true));
  await loop;
  return { result, worstMs, probes };
}

describe('uploads under a global bound', () => {
  const MAX = 64 * 2 ** 20;
  let up: ExploreServer;
  let root: string;
  const primes = () => join(root, 'explore-jobs', 'primes');
  const primeFiles = () => (existsSync(primes()) ? readdirSync(primes()) : []);
  beforeAll(async () => {
    root = join(tmp, 'upload-root');
    mkdirSync(root, { recursive: true });
    // Lowered from 256 MiB so the test sends little; the bound works the same.
    up = await startExploreServer({ dirs: [root], maxUploadBytes: MAX, maxConcurrentUploads: 2 });
  });
  afterAll(() => up?.close());

  it('refuses concurrent oversized uploads (429 past two at once, 413 past the cap) while staying small and responsive', async () => {
    global.gc?.();
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 5);
    // Four at once, each larger than the cap and without a Content-Length (so the cap can
    // only be enforced while streaming): two are received and cut off at the cap, two wait
    // for no slot.
    const { result, worstMs, probes } = await probeWhile(up, Promise.all([0, 1, 2, 3].map(() => streamUpload(up, MAX + 8 * 2 ** 20))));
    clearInterval(sampler);
    const replies = result as Streamed[];
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([413, 413, 429, 429]);
    for (const r of replies) expect(JSON.parse(r.body).error).toMatch(r.status === 413 ? /too large: at most 64 MiB/ : /too many uploads at once/);
    const tooMany = replies.find((r) => r.status === 429)!;
    expect(Number(tooMany.headers['retry-after'])).toBeGreaterThan(0);
    // The ones refused with 413 were read up to the cap: streamed, not rejected up front.
    for (const r of replies.filter((x) => x.status === 413)) expect(r.written).toBeGreaterThan(MAX - 2 ** 20);
    // Responsive: every probe answered within a second, and there were some.
    expect(probes).toBeGreaterThan(2);
    expect(worstMs).toBeLessThan(1000);
    // Streamed to disk: the process did not grow by what was in flight (2 x 64 MiB held in
    // memory, as before, is 128 MiB; streaming keeps a few socket chunks and their garbage).
    expect((rssPeak - rssBefore) / 2 ** 20).toBeLessThan(64);
    // And the partial files are gone.
    expect(primeFiles()).toEqual([]);
  });

  it('refuses a declared Content-Length over the cap at once, before reading the body', async () => {
    const r = (await streamUpload(up, 10 * MAX, { declare: true })) as Streamed;
    expect(r.status).toBe(413);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(r.body).error).toMatch(/too large/);
    // Answered after the first chunks, not after 640 MiB.
    expect(r.written).toBeLessThan(MAX);
    expect(primeFiles()).toEqual([]);
  });

  it('removes the partial file of an upload the client abandons', async () => {
    expect(await streamUpload(up, 32 * 2 ** 20, { declare: true, abortAfter: 4 * 2 ** 20 })).toBe('aborted');
    const t0 = Date.now();
    while (primeFiles().length > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(primeFiles()).toEqual([]);
  });

  it('takes uploads again afterwards (every slot was given back)', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await http('/api/primes', { server: up, method: 'POST', headers: { 'Content-Type': 'audio/wav' }, body: readFileSync(join(runs.topOnly, 'sample_0.wav')) as unknown as string });
      expect(r.status, r.body.toString()).toBe(201);
    }
    expect(primeFiles().filter((f) => f.endsWith('.part'))).toEqual([]);
  });
});

describe('decoding uploads in a worker, bounded', () => {
  const upload = (body: Buffer, name: string, server = srv) =>
    http('/api/primes', { server, method: 'POST', headers: { 'Content-Type': 'audio/wav', 'X-Filename': name }, body: body as unknown as string });

  it.each([
    [1, 3000], // 6 KB declaring 1 Hz: 50 minutes of "audio"; once 21 s of a frozen server and 3 GB
    [2, 3000],
    [2, 50], // short, but no sound at 2 Hz
  ])('refuses a tiny WAV declaring %i Hz (%i frames) quickly with a 400, answering probes meanwhile', async (rate, frames) => {
    const t0 = performance.now();
    const { result, worstMs } = await probeWhile(srv, upload(wavAt(rate, frames), 'tiny.wav'));
    const ms = performance.now() - t0;
    expect(result.status).toBe(400);
    expect(json<{ error: string }>(result).error).toMatch(/^tiny\.wav declares a sample rate of \d Hz/);
    expect(ms).toBeLessThan(3000);
    expect(worstMs).toBeLessThan(1000);
  });

  it('refuses audio longer than the bound', async () => {
    const s = await startExploreServer({ dirs: [join(tmp, 'upload-root')], decodeLimits: { maxSeconds: 1 } });
    try {
      const r = await upload(readFileSync(join(runs.topOnly, 'sample_0.wav')), 'long.wav', s);
      expect(r.status).toBe(400);
      expect(json<{ error: string }>(r).error).toMatch(/long\.wav holds 1\.5 s of audio; at most 1 s is accepted/);
    } finally {
      await s.close();
    }
  });

  it('stops a decode that runs past its time limit or its memory limit (the worker is terminated)', async () => {
    const big = encodeWav([0, 1].map(() => new Float32Array(44100 * 60).map((_, i) => Math.sin(i / 7))), 44100, 's16');
    const slow = await startExploreServer({ dirs: [join(tmp, 'upload-root')], decodeLimits: { timeoutMs: 1 } });
    try {
      const r = await upload(big, 'slow.wav', slow);
      expect(r.status).toBe(400);
      expect(json<{ error: string }>(r).error).toMatch(/^slow\.wav: decoding took longer than 1 ms and was stopped/);
    } finally {
      await slow.close();
    }
    const hungry = await startExploreServer({ dirs: [join(tmp, 'upload-root')], decodeLimits: { memoryMb: 2 } });
    try {
      const r = await upload(big, 'hungry.wav', hungry);
      expect(r.status).toBe(400);
      expect(json<{ error: string }>(r).error).toMatch(/^hungry\.wav: decoding needed more than 2 MiB and was stopped/);
    } finally {
      await hungry.close();
    }
    expect(readdirSync(join(tmp, 'upload-root', 'explore-jobs', 'primes')).filter((f) => f.endsWith('.part'))).toEqual([]);
  });
});

describe('folders the catalogue meets in the wild', () => {
  it('lists older runs, skips unfinished ones and reports unreadable ones without failing', async () => {
    const root = join(tmp, 'wild');
    const copy = (from: string, to: string) => {
      mkdirSync(to, { recursive: true });
      for (const f of readdirSync(from)) writeFileSync(join(to, f), readFileSync(join(from, f)));
    };
    // an older version's folder: no model in run.json, no lyric text in alignment.npz
    copy(runs.withLyrics, join(root, 'old'));
    const state = JSON.parse(readFileSync(join(root, 'old', 'run.json'), 'utf8'));
    delete state.model;
    writeFileSync(join(root, 'old', 'run.json'), JSON.stringify(state));
    const npz = readNpz(join(root, 'old', 'alignment.npz'));
    delete npz.lyric_text;
    writeNpz(join(root, 'old', 'alignment.npz'), npz as Record<string, NpzWritableArray>);
    // a run still going (codes, no audio yet), and a broken run.json
    mkdirSync(join(root, 'running'));
    writeFileSync(join(root, 'running', 'run.json'), readFileSync(join(runs.topOnly, 'run.json')));
    writeFileSync(join(root, 'running', 'codes_level_2.npz'), readFileSync(join(runs.topOnly, 'codes_level_2.npz')));
    mkdirSync(join(root, 'broken'));
    writeFileSync(join(root, 'broken', 'run.json'), '{"samples": ');
    const s2 = await startExploreServer({ dirs: [root], jobs: false });
    try {
      const c = s2.catalog();
      expect(c.live).toBe(false);
      expect(c.samples.map((x) => x.runPath.split('/').pop())).toEqual(['old', 'old']);
      expect(c.samples[0].model).toBe('unknown');
      // without the text, the alignment still highlights: placeholders of the right length
      expect(c.samples[0].alignment!.text).toHaveLength(LYRICS.length);
      expect(c.problems).toHaveLength(1);
      expect(c.problems[0]).toMatch(/broken: run\.json is not readable/);
      const u = new URL(s2.url);
      const refused = await new Promise<number>((resolve) => {
        const r = request({ host: u.hostname, port: u.port, path: '/api/jobs', method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => resolve(res.statusCode!));
        r.end('{}');
      });
      expect(refused).toBe(403);
    } finally {
      await s2.close();
    }
  });
});

describe('static export', () => {
  it('writes the page, the catalogue and every file it links to', async () => {
    const out = join(tmp, 'site');
    const r = await exportSite({ dirs: [runs.root], out });
    expect(r.catalog.live).toBe(false);
    for (const f of ['index.html', 'app.js', 'app.css', 'catalog.js', 'catalog.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const urls = r.catalog.samples.flatMap((s: SampleEntry) => [
      ...s.levels.flatMap((l) => [l.audioUrl, l.spectrogramUrl]),
      ...s.codes.map((x) => x.url),
      ...(s.alignment ? [s.alignment.heatmapUrl] : []),
    ]);
    expect(urls.length).toBeGreaterThan(10);
    for (const u of urls) expect(existsSync(join(out, ...u.split('/').map(decodeURIComponent))), u).toBe(true);
    expect(readFileSync(join(out, 'files/0/lyrics/sample_0.wav')).equals(readFileSync(join(runs.withLyrics, 'sample_0.wav')))).toBe(true);
    // An unrelated non-empty folder is not overwritten.
    await expect(exportSite({ dirs: [runs.root], out: runs.models })).rejects.toThrow(/not empty/);
  });
});

describe('jukebox explore (CLI)', () => {
  it('prints the URL of a server on 127.0.0.1, serves the catalogue, and stops on Ctrl-C', async () => {
    const child = spawn(process.execPath, [bin, 'explore', runs.root, '--no-open'], { env: { ...process.env, CI: '1' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const t0 = Date.now();
    while (!/http:\/\/127\.0\.0\.1:\d+\//.test(out)) {
      if (Date.now() - t0 > 30_000) throw new Error(`no URL printed: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
    expect(out).toMatch(/\d+ sample\(s\)/);
    const c = (await (await fetch(`${url}catalog.json`)).json()) as Catalog;
    expect(c.samples.length).toBeGreaterThanOrEqual(3);
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.kill('SIGINT');
    });
    expect(code).toBe(0);
  });

  it('--export writes a static site; a missing folder or a busy port is a one-line error', async () => {
    const run = promisify(execFile);
    const out = join(tmp, 'cli-site');
    const r = await run(process.execPath, [bin, 'explore', runs.root, '--export', out], { env: { ...process.env, CI: '1' } });
    expect(r.stdout).toMatch(/wrote .*cli-site: \d+ sample\(s\)/);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
    const fail = (args: string[]) => run(process.execPath, [bin, 'explore', ...args], { env: { ...process.env, CI: '1' } }).then(() => null, (e: { code: number; stderr: string }) => e);
    const missing = await fail([join(tmp, 'nope'), '--no-open']);
    expect(missing?.code).toBe(1);
    expect(missing?.stderr).toMatch(/^jukebox: error: .*nope is not a folder/);
    const port = Number(new URL(srv.url).port);
    const busy = await fail([runs.root, '--no-open', '--port', String(port)]);
    expect(busy?.stderr).toMatch(/port \d+ is in use/);
  });
});
