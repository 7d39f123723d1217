import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadJukebox } from '../lib/generate/generate.js';
import { defaultModelDir, readModelSet } from '../lib/model-set.js';
import { writeTinyModels } from './helpers/random-models.js';
import { repoRoot } from './helpers/fixtures.js';

let dir: string;
let files: { vqvae: string; priors: string[] };

function writeSet(json: unknown, into = dir): string {
  writeFileSync(join(into, 'model.json'), typeof json === 'string' ? json : JSON.stringify(json));
  return into;
}

function sub(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

const good = () => ({
  format: 'jukebox-model-set/1',
  name: 'tiny',
  vqvae: basename(files.vqvae),
  priors: { '0': basename(files.priors[0]), '1': basename(files.priors[1]), '2': basename(files.priors[2]) },
  defaults: { temperature: 0.9 },
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jukebox-modelset-'));
  files = await writeTinyModels(dir);
});

describe('model folders (model.json)', () => {
  it('reads a folder and loads it through loadJukebox({ model })', async () => {
    writeSet(good());
    const set = readModelSet(dir);
    expect(set.name).toBe('tiny');
    expect(set.vqvae).toBe(files.vqvae);
    expect(set.priors).toEqual(files.priors);
    expect(set.defaults.temperature).toBe(0.9);
    expect(readModelSet(join(dir, 'model.json')).vqvae).toBe(files.vqvae);
    const jb = await loadJukebox({ model: dir });
    try {
      expect(jb.priors.map((p) => p?.structure.level)).toEqual([0, 1, 2]);
      expect(jb.defaults.temperature).toBe(0.9);
    } finally {
      jb.dispose();
    }
  });

  it('refuses bad folders with ERR_MODEL_SET and a message naming the problem', () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [[1, 2], /JSON object/],
      [{ ...good(), format: 'other/1' }, /format must be "jukebox-model-set\/1"/],
      [{ ...good(), vqvae: '../vqvae.safetensors' }, /points outside the model folder/],
      [{ ...good(), vqvae: '/etc/passwd' }, /must be relative/],
      [{ ...good(), vqvae: 'missing.safetensors' }, /does not exist/],
      [{ ...good(), priors: { top: 'x' } }, /"top" is not a level/],
      [{ ...good(), priors: [] }, /priors must map levels/],
      [{ ...good(), defaults: { temperature: 'hot' } }, /defaults.temperature must be a number/],
    ];
    for (const [json, message] of cases) {
      const d = writeSet(json);
      expect(() => readModelSet(d)).toThrow(message);
      try {
        readModelSet(d);
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_MODEL_SET');
      }
    }
    expect(() => readModelSet(join(dir, 'nowhere'))).toThrow(/does not exist/);
    expect(() => readModelSet(sub('empty'))).toThrow(/has no model.json/);
    writeSet(good());
  });

  it('backend: auto runs on the CPU here and says why; cuda fails with ERR_BACKEND_UNAVAILABLE', async () => {
    writeSet(good());
    const jb = await loadJukebox({ model: dir, backend: 'auto' });
    try {
      expect(jb.backend.used).toBe('cpu');
      expect(jb.backend.reason).toMatch(/^auto: using the CPU .* because CUDA is unavailable/);
    } finally {
      jb.dispose();
    }
    await expect(loadJukebox({ model: dir, backend: 'cuda' })).rejects.toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE' });
    await expect(loadJukebox({ model: dir, backend: 'gpu' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('the package default lives in models/default', () => {
    expect(defaultModelDir()).toBe(join(repoRoot, 'models', 'default'));
  });
});
