/**
 * What the fuzz harness feeds and to what: each family has seed files (small files already in
 * the repo), a mutator, and the reader calls a user's command would make on such a file
 * (`info`, `convert`, `encode`, `decode`, `score`'s inputs). The worker runs `run(family,
 * path)`; anything but success or a JukeboxError is a finding.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutateBytes, mutateJsonValue, mutateSafetensors, mutateWavHeader } from './mutate.mjs';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fx = (rel) => join(REPO, 'test', 'fixtures', rel);
const model = (rel) => join(REPO, 'models', 'default', rel);

/** A hyperparameter file with the original's full set (structure, training, sampling, data). */
function configSeed() {
  return Buffer.from(JSON.stringify({
    levels: 2, downs_t: [2, 1], strides_t: [4, 2], emb_width: 8, l_bins: 37, width: 12, depth: 2, m_conv: 0.5,
    dilation_growth_rate: 2, dilation_cycle: 2, hvqvae_multipliers: null, vqvae_reverse_decoder_dilation: false, sr: 44100,
    l_mu: 0.99, commit: 1.0, sample_length: 4096, lr: 0.0003, bs: 1, epochs: 10000, spectral: 0.0, n_fft: 1024,
    multispec_loss_n_fft: [2048, 1024, 512], hop_fraction: [0.5, 0.5, 0.125], n_samples: 1, name: 'fuzz',
  }));
}

function jsonMutator(input, r) {
  if (r() < 0.2) return mutateBytes(input, r);
  // JSON has no inf, but 1e999 parses as one: the value convert used to write back as null.
  if (r() < 0.1) return Buffer.from(input.toString('utf8').replace(/:\s*(-?[\d.]+)/, (m) => (r() < 0.5 ? ': 1e999' : ': -1e999')));
  try {
    return Buffer.from(JSON.stringify(mutateJsonValue(JSON.parse(input.toString('utf8')), r)));
  } catch {
    return mutateBytes(input, r);
  }
}

function safetensorsMutator(input, r) {
  if (r() < 0.25) return mutateBytes(input, r);
  try {
    return mutateSafetensors(input, r);
  } catch {
    return mutateBytes(input, r);
  }
}

function wavMutator(input, r) {
  return r() < 0.5 ? mutateWavHeader(input, r) : mutateBytes(input, r);
}

/** Families: seeds (paths, or a function making the bytes), the mutator, and the file extension. */
export const FAMILIES = {
  'torch-legacy': { seeds: [fx('vqvae-variants/a.pth.tar'), fx('checkpoint/small.legacy.pth.tar'), fx('checkpoint/bare.legacy.pth.tar')], mutate: mutateBytes, ext: '.pth.tar' },
  'torch-zip': { seeds: [fx('vqvae-variants/b.pth.tar'), fx('checkpoint/small.zip.pth.tar'), fx('checkpoint/small.zip64.pth.tar'), fx('checkpoint/deflate.zip')], mutate: mutateBytes, ext: '.pth.tar' },
  'safetensors-vqvae': { seeds: [model('vqvae.safetensors')], mutate: safetensorsMutator, ext: '.safetensors' },
  'safetensors-prior': { seeds: [model('prior_level_2.safetensors'), model('prior_level_0.safetensors')], mutate: safetensorsMutator, ext: '.safetensors' },
  'hparams-config': { seeds: [configSeed], mutate: jsonMutator, ext: '.json' },
  // The hand-made hostile files (test/fixtures/hostile/make.mjs): pickle and zip bombs, a
  // stride-0 view, absurd hyperparameters in metadata; mutants of them probe the same limits.
  'hostile-checkpoints': {
    seeds: ['ckpt-bomb-dicts', 'ckpt-bomb-marks', 'ckpt-stride0-codebook'].map((n) => fx(`hostile/${n}.pth.tar`)),
    mutate: mutateBytes,
    ext: '.pth.tar',
  },
  'hostile-safetensors': {
    seeds: ['vqvae-depth-2e31', 'vqvae-multipliers-1e9', 'prior-depth-2e31', 'prior-bow-genres-2e31'].map((n) => fx(`hostile/${n}.safetensors`)),
    mutate: safetensorsMutator,
    ext: '.safetensors',
  },
  wav: { seeds: [fx('audio/tone.wav')], mutate: wavMutator, ext: '.wav' },
  flac: { seeds: [fx('audio/tone.flac')], mutate: mutateBytes, ext: '.flac' },
  vorbis: { seeds: [fx('audio/tone.ogg')], mutate: mutateBytes, ext: '.ogg' },
  opus: { seeds: [fx('audio/tone.opus')], mutate: mutateBytes, ext: '.opus' },
  mp3: { seeds: [fx('audio/tone.mp3')], mutate: mutateBytes, ext: '.mp3' },
  npz: { seeds: [fx('npz/mixed.npz'), fx('npz/mixed_compressed.npz'), fx('npz/zip64.npz')], mutate: mutateBytes, ext: '.npz' },
  npy: { seeds: [fx('npz/v2.npy'), fx('npz/v3.npy')], mutate: mutateBytes, ext: '.npy' },
};

export function seedsOf(family) {
  return FAMILIES[family].seeds.filter((s) => typeof s === 'function' || existsSync(s));
}

/** The reader calls for one file, as the CLI commands would make them. Runs in the worker. */
export async function run(family, path, api, scratch) {
  const { modelInfo, loadVQVAE, loadPrior, convertCheckpoint, loadAudio, readNpz, readNpy } = api;
  switch (family) {
    case 'torch-legacy':
    case 'torch-zip':
    case 'hostile-checkpoints': {
      const info = modelInfo(path); // `jukebox info`
      if (info.kind === 'vqvae') {
        // `jukebox decode/encode` straight from a .pth.tar (hyperparameters from its hps), then `convert`
        const vq = await loadVQVAE(path);
        try {
          const top = vq.levels - 1;
          await vq.decode(new Int32Array(4).fill(1), top);
          await vq.encode(new Float32Array(vq.hopLengths[top] * 2));
        } finally {
          vq.dispose();
        }
        await convertCheckpoint(path, join(scratch, 'out.safetensors'), {});
      }
      return;
    }
    case 'safetensors-vqvae': {
      modelInfo(path);
      const vq = await loadVQVAE(path);
      try {
        const top = vq.levels - 1;
        await vq.decode(new Int32Array(4).fill(1), top);
        await vq.encode(new Float32Array(Math.min(1 << 16, vq.hopLengths[top] * 2)));
      } finally {
        vq.dispose();
      }
      return;
    }
    case 'hostile-safetensors': {
      const info = modelInfo(path);
      if (info.kind === 'vqvae') {
        const vq = await loadVQVAE(path);
        vq.dispose();
      } else {
        (await loadPrior(path)).dispose();
      }
      return;
    }
    case 'safetensors-prior': {
      modelInfo(path);
      const prior = await loadPrior(path);
      prior.dispose();
      return;
    }
    case 'hparams-config':
      // `jukebox convert --config` over a small VQ-VAE checkpoint
      await convertCheckpoint(fx('vqvae-variants/a.pth.tar'), join(scratch, 'out.safetensors'), { config: path });
      return;
    case 'wav':
    case 'flac':
    case 'vorbis':
    case 'opus':
    case 'mp3':
      await loadAudio(path, { sampleRate: 44100 });
      return;
    case 'npz':
      readNpz(path);
      return;
    case 'npy':
      readNpy(path);
      return;
    default:
      throw new Error(`unknown fuzz family ${family}`);
  }
}
