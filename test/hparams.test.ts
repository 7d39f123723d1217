/**
 * Hyperparameters under the original's names: a complete dump of a run's hps converts (the
 * names that do not shape the model are kept as metadata and shown by info), a name the
 * original never had is refused with the closest one suggested, a converted prior stores its
 * own structure only, and absurd values of every structural name are refused before
 * anything is sized from them, with the limit named.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../lib/checkpoint/index.js';
import { convertCheckpoint } from '../lib/convert.js';
import { JukeboxError } from '../lib/errors.js';
import { LIMITS } from '../lib/hparams/bounds.js';
import { hparamsFromCheckpoint, readConfigFile } from '../lib/hparams/merge.js';
import { ORIGINAL_HPARAMS, closestHparam } from '../lib/hparams/original.js';
import { KNOWN_HPARAMS, preset, type Hparams } from '../lib/hparams/presets.js';
import { formatInfo, modelInfo } from '../lib/info.js';
import { priorStructure } from '../lib/prior/structure.js';
import { vqvaeHparams } from '../lib/vqvae/hparams.js';
import { loadVQVAE } from '../lib/vqvae/vqvae.js';
import { fixture } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-hparams-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ORIGINAL_DEFAULTS = JSON.parse(readFileSync(fixture('hparams/original-defaults.json'), 'utf8')) as Record<string, unknown>;
const VARIANT_A = (JSON.parse(readFileSync(fixture('vqvae-variants/manifest.json'), 'utf8')) as Record<string, { hparams: Hparams }>).a!.hparams;

function writeJson(name: string, value: unknown): string {
  const p = join(tmp, name);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
}

function hparamsError(fn: () => unknown): JukeboxError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(JukeboxError);
    expect((e as JukeboxError).code).toBe('ERR_HPARAMS');
    return e as JukeboxError;
  }
  throw new Error('expected ERR_HPARAMS');
}

describe('the original names', () => {
  it('every DEFAULTS entry of the original hparams.py is known, in its group', () => {
    expect(Object.keys(ORIGINAL_DEFAULTS).length).toBe(198);
    for (const k of Object.keys(ORIGINAL_DEFAULTS)) expect(ORIGINAL_HPARAMS.has(k), k).toBe(true);
    for (const k of KNOWN_HPARAMS) expect(ORIGINAL_HPARAMS.has(k), `structural ${k}`).toBe(true);
    expect(ORIGINAL_HPARAMS.get('l_mu')).toBe('vqvae');
    expect(ORIGINAL_HPARAMS.get('sample_length')).toBe('audio');
    expect(ORIGINAL_HPARAMS.get('argv')).toBe('runtime');
  });

  it('suggests the closest name for typos, and nothing for strangers', () => {
    expect(closestHparam('prior_dept')).toBe('prior_depth');
    expect(closestHparam('sample_lenght')).toBe('sample_length');
    expect(closestHparam('widht')).toBe('width');
    expect(closestHparam('Downs-T')).toBe('downs_t');
    expect(closestHparam('quantum_flux_capacitor')).toBeUndefined();
  });

  it('a config with the full original set (structure + training + sampling + data + run-time names) converts', async () => {
    const config = {
      ...ORIGINAL_DEFAULTS,
      ...VARIANT_A,
      // what train.py, sample.py and the data processor add at run time
      argv: 'jukebox/train.py --hps=vqvae --name=x', ngpus: 8, bandwidth: { l1: 0.1, l2: 0.02, spec: 5.5 },
      n_samples: 4, hop_fraction: [0.5, 0.5, 0.125], model: '5b_lyrics', mode: 'ancestral',
    };
    const cfg = writeJson('full.json', config);
    expect(readConfigFile(cfg).other).toMatchObject({ l_mu: 0.99, commit: 1.0, sample_length: 0, lr: 0.0003, bandwidth: { l1: 0.1 } });
    const out = join(tmp, 'a-full.safetensors');
    const r = await convertCheckpoint(fixture('vqvae-variants/a.pth.tar'), out, { config: cfg });
    expect(r.kind).toBe('vqvae');
    expect(r.unrecognised).toEqual([]);
    // the structure stored is this VQ-VAE's own; the rest is kept beside it
    const meta = readSafetensorsHeader(out).metadata;
    const structure = JSON.parse(meta['jukebox.hparams']!) as Hparams;
    expect(structure).toMatchObject({ levels: 2, downs_t: [2, 1], strides_t: [4, 2], width: 12, depth: 2, sr: 44100 });
    expect(structure).not.toHaveProperty('n_ctx');
    expect(structure).not.toHaveProperty('prior_width');
    const other = JSON.parse(meta['jukebox.hparams_other']!) as Record<string, unknown>;
    expect(other).toMatchObject({ l_mu: 0.99, commit: 1.0, sample_length: 0, ngpus: 8, hop_fraction: [0.5, 0.5, 0.125], n_ctx: 1024 });
    // info shows them
    const info = modelInfo(out);
    expect(info.otherHparams).toMatchObject({ l_mu: 0.99 });
    expect(formatInfo(info)).toContain("(training/sampling settings of the original");
    // and the converted file decodes as the original checkpoint does
    const [vqA, vqB] = [await loadVQVAE(fixture('vqvae-variants/a.pth.tar')), await loadVQVAE(out)];
    try {
      const codes = new Int32Array(32).map((_, i) => (i * 7) % 37);
      const [x] = await vqA.decode(codes, 1);
      const [y] = await vqB.decode(codes, 1);
      expect(maxAbsDiff(x!, y!)).toBe(0);
    } finally {
      vqA.dispose();
      vqB.dispose();
    }
  });

  it('refuses a name the original never had, with the closest known name', async () => {
    for (const [name, near] of [['prior_dept', 'prior_depth'], ['sample_lenght', 'sample_length'], ['l_muu', 'l_mu']] as const) {
      const cfg = writeJson(`typo-${name}.json`, { ...VARIANT_A, [name]: 3 });
      const e = hparamsError(() => readConfigFile(cfg));
      expect(e.message).toContain(`unknown hyperparameter "${name}"`);
      expect(e.message).toContain(`did you mean "${near}"`);
      expect(e.message).toContain(cfg);
    }
    const cfg = writeJson('stranger.json', { quantum_flux_capacitor: 1 });
    expect(hparamsError(() => readConfigFile(cfg)).message).not.toContain('did you mean');
  });

  it("a checkpoint's hps: original names sorted, unrecognised ones kept apart (never used)", () => {
    const sorted = hparamsFromCheckpoint({ levels: 3, l_mu: 0.99, argv: 'x', gpipe_chunks: 4, widht: 3 });
    expect(sorted.values).toEqual({ levels: 3 });
    expect(sorted.other).toEqual({ l_mu: 0.99, argv: 'x' });
    expect(sorted.unrecognised).toEqual({ gpipe_chunks: 4, widht: 3 });
  });

  it('a converted prior stores its own structure, not the base VQ-VAE defaults', async () => {
    const vq = join(tmp, 'vq.safetensors');
    await convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), vq);
    const out = join(tmp, 'up.safetensors');
    await convertCheckpoint(fixture('priors/upsampler_like/prior.zip.pth.tar'), out, { vqvae: vq });
    const meta = readSafetensorsHeader(out).metadata;
    const structure = JSON.parse(meta['jukebox.hparams']!) as Hparams;
    expect(typeof structure.level).toBe('number');
    expect(structure).toHaveProperty('prior_width');
    for (const k of ['levels', 'downs_t', 'strides_t', 'width', 'depth', 'emb_width', 'l_bins']) expect(structure, k).not.toHaveProperty(k);
    expect(JSON.parse(meta['jukebox.vqvae_hparams']!)).toMatchObject({ levels: 3, downs_t: [3, 2, 2] });
    expect(formatInfo(modelInfo(out))).not.toMatch(/hparams: .*\bwidth=/);
  });

  it('a non-finite value (sr = 1e999 parses as inf) is refused instead of being written as null', async () => {
    const cfg = writeJson('sr-inf.json', `{"sr": 1e999}`);
    const e = await convertCheckpoint(fixture('vqvae-variants/a.pth.tar'), join(tmp, 'inf.safetensors'), { config: cfg }).then(
      () => undefined,
      (err: unknown) => err as JukeboxError,
    );
    expect(e).toBeInstanceOf(JukeboxError);
    expect(e!.code).toBe('ERR_HPARAMS');
    expect(e!.message).toMatch(/sr .*(finite|inf)/i);
  });
});

describe('bounds on every structural hyperparameter', () => {
  const vqBase = preset('vqvae');
  const vqCases: [string, unknown, RegExp][] = [
    ['depth', 2 ** 31, /depth .*\[0, 256\]/],
    ['depth', 1e300, /depth/],
    ['width', 1e9, /width .*65536/],
    ['levels', 1e6, /levels/],
    ['hvqvae_multipliers', [2, 1e9, 1], /hvqvae_multipliers/],
    ['downs_t', [3, 1e300, 2], /downs_t/],
    ['downs_t', [16, 16, 16], /hop length/],
    ['strides_t', [2, -1, 2], /strides_t/],
    ['l_bins', 2 ** 40, /l_bins/],
    ['emb_width', 0.5, /emb_width/],
    ['m_conv', 1e9, /m_conv/],
    ['m_conv', NaN, /m_conv/],
    ['dilation_growth_rate', 2000, /dilation_growth_rate/],
    ['depth', 40, /largest dilation/],
    ['dilation_cycle', 0, /dilation_cycle/],
    ['sr', Infinity, /sr/],
    ['sr', 2, null as unknown as RegExp],
  ];
  it.each(vqCases)('VQ-VAE %s = %j', (key, value, pattern) => {
    const h = { ...vqBase, [key]: value } as Hparams;
    if (pattern === null) {
      expect(() => vqvaeHparams(h, 'test')).not.toThrow(); // a low sr is the audio readers' business
      return;
    }
    const t0 = Date.now();
    const e = hparamsError(() => vqvaeHparams(h, 'test.safetensors'));
    expect(e.message).toMatch(pattern);
    expect(e.message).toContain('test.safetensors');
    expect(Date.now() - t0).toBeLessThan(100);
  });

  const vq = vqvaeHparams(vqBase, 'vq');
  const priorCases: [string, string, unknown, RegExp][] = [
    ['prior_5b_lyrics', 'prior_depth', 2 ** 31, /prior_depth .*1024/],
    ['prior_5b_lyrics', 'prior_depth', 1e300, /prior_depth/],
    ['prior_5b_lyrics', 'prior_width', 1e7, /prior_width/],
    ['prior_5b_lyrics', 'max_bow_genre_size', 2 ** 31, /max_bow_genre_size .*1024/],
    ['prior_5b_lyrics', 'n_ctx', 2 ** 30, /n_ctx/],
    ['prior_5b_lyrics', 'n_tokens', 1e9, /n_tokens/],
    ['prior_5b_lyrics', 'heads', 1e6, /heads/],
    ['prior_5b_lyrics', 'm_mlp', 1e9, /m_mlp/],
    ['prior_5b_lyrics', 'y_bins', [120, 1e12], /y_bins/],
    ['prior_5b_lyrics', 't_bins', 1e9, /t_bins/],
    ['prior_5b_lyrics', 'min_duration', 1e300, /min_duration/],
    ['prior_5b_lyrics', 'prime_depth', 2 ** 31, /prime_depth/],
    ['prior_5b_lyrics', 'sr', Infinity, /sr/],
    ['upsampler_level_0', 'cond_depth', 2 ** 31, /cond_depth/],
    ['upsampler_level_0', 'cond_width', 1e9, /cond_width/],
    ['upsampler_level_0', 'cond_dilation_cycle', -1, /cond_dilation_cycle/],
    ['upsampler_level_0', 'cond_dilation_growth_rate', 1000, /dilation/],
    ['prior_1b_lyrics', 'prior_width', 60000, /parameters/],
  ];
  it.each(priorCases)('%s %s = %j', (name, key, value, pattern) => {
    const h = { ...preset(name as 'prior_5b_lyrics'), [key]: value } as Hparams;
    const t0 = Date.now();
    const e = hparamsError(() => priorStructure(h, vq, 'prior.safetensors'));
    expect(e.message).toMatch(pattern);
    expect(Date.now() - t0).toBeLessThan(100);
  });

  it('every official preset is within the bounds', () => {
    for (const name of ['upsampler_level_0', 'upsampler_level_1', 'prior_5b', 'prior_5b_lyrics', 'prior_1b_lyrics'] as const) {
      expect(() => priorStructure(preset(name), vq, name)).not.toThrow();
    }
    expect(LIMITS.priorParameters).toBeGreaterThan(5.6e9);
  });
});
