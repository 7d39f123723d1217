/**
 * The fuzz harness's child process: runs one case at a time for the parent (over IPC) and
 * answers how it ended. It is a separate process so that a crash, a V8 out-of-memory abort
 * or a hang kills only it; the parent sees that, records the case and starts a new worker.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, run } from './targets.mjs';

const dist = (rel) => import(pathToFileURL(join(REPO, 'dist', rel)).href);
const index = await dist('index.js');
const npz = await dist('npz.js');
const api = { ...index, readNpy: (p) => npz.parseNpy(readFileSync(p), p) };
const scratch = mkdtempSync(join(tmpdir(), 'jukebox-fuzz-worker-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

process.on('message', async ({ id, family, path }) => {
  let reply;
  try {
    await run(family, path, api, scratch);
    reply = { id, outcome: 'success' };
  } catch (e) {
    if (e instanceof index.JukeboxError) reply = { id, outcome: 'clean', code: e.code, message: e.message.slice(0, 300) };
    else reply = { id, outcome: 'raw', name: e?.name ?? typeof e, message: String(e?.message ?? e).slice(0, 300), stack: String(e?.stack ?? '').split('\n').slice(0, 6).join('\n') };
  }
  process.send(reply);
});
process.send({ ready: true });
