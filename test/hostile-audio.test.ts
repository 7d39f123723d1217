/**
 * Hostile and corrupt audio: every file that cannot be used must end in a JukeboxError with
 * ERR_AUDIO_FORMAT naming the file, promptly, both through loadAudio and through the CLI's
 * one-line error; and what a file may ask for (sample rate, channels, frames, decoded size)
 * is bounded. The files in test/fixtures/hostile/audio are made by make.mjs there, which says
 * what each one broke before.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isJukeboxError, JukeboxError } from '../lib/errors.js';
import { decodeAudio, loadAudio } from '../lib/audio/decode.js';
import { MAX_DECODED_SAMPLES, MIN_SAMPLE_RATE } from '../lib/audio/limits.js';
import { encodeWav, parseWav } from '../lib/audio/wav.js';
import { fixture, repoRoot } from './helpers/fixtures.js';

const HOSTILE = fixture('hostile/audio');
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-hostile-audio-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const installed = async (pkg: string): Promise<boolean> => import(pkg).then(() => true, () => false);
const PACKAGES: Record<string, string> = {
  flac: '@wasm-audio-decoders/flac',
  ogg: '@wasm-audio-decoders/ogg-vorbis',
  opus: 'ogg-opus-decoder',
  mp3: 'mpg123-decoder',
};
const HAS: Record<string, boolean> = {};
for (const [ext, pkg] of Object.entries(PACKAGES)) HAS[ext] = await installed(pkg);
/** Whether the file's decoder is here (WAV needs none); without it the error is "needs the optional package". */
const decodable = (name: string): boolean => HAS[name.split('.').pop() ?? ''] ?? true;

async function audioError(p: Promise<unknown>): Promise<JukeboxError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(isJukeboxError(caught, 'ERR_AUDIO_FORMAT'), String((caught as Error | undefined)?.stack ?? caught)).toBe(true);
  return caught as JukeboxError;
}

// Every committed hostile file, with what its error must say (beyond naming the file).
const FIXTURES: [name: string, fragment: string][] = [
  ['rate-1hz.wav', 'sample rate of 1 Hz'],
  ['rate-2hz.wav', 'sample rate of 2 Hz'],
  ['claims-2e31-frames.wav', 'declares 2147483648 bytes (2147483648 frames of 1 channel(s)), more than the limit of 691,200,000 samples (MAX_DECODED_SAMPLES'],
  ['rf64-claims-2e31-frames.wav', '(2147483648 frames of 2 channel(s)), more than the limit of 691,200,000 samples (MAX_DECODED_SAMPLES'],
  ['channels-65535.wav', '65535 channels'],
  ['block-align-0.wav', 'block size of 0 bytes'],
  ['bits-0.wav', '0-bit PCM'],
  ['extensible-bad-guid.wav', 'sub-format GUID'],
  ['extensible-short.wav', 'shorter than 40'],
  ['huge-chunk.wav', 'no fmt chunk'],
  ['fmt-truncated.wav', 'fmt chunk is truncated'],
  ['non-finite.wav', 'non-finite sample (NaN at frame 200)'],
  ['rate-1hz.flac', 'sample rate of 1 Hz'],
  ['truncated.flac', 'holds no decodable FLAC audio'],
  ['corrupt.opus', 'could not be decoded as Ogg Opus: its data is corrupt (the decoder crashed: memory access out of bounds)'],
  ['truncated.opus', 'could not be decoded as Ogg Opus: its data is corrupt or truncated'],
  ['corrupt.ogg', 'could not be decoded as Ogg Vorbis: its data is corrupt or truncated'],
  ['truncated.ogg', 'holds no decodable Ogg Vorbis audio'],
  ['truncated.mp3', 'holds no decodable MP3 audio'],
  ['id3-chain.mp3', 'not in a format we recognise'],
];

describe('hostile audio files: loadAudio', () => {
  for (const [name, fragment] of FIXTURES) {
    it(`${name} is an ERR_AUDIO_FORMAT naming the file`, async () => {
      const path = join(HOSTILE, name);
      const t = performance.now();
      const e = await audioError(loadAudio(path, { sampleRate: 44100 }));
      expect(performance.now() - t).toBeLessThan(3000); // all of them take milliseconds; the 1 Hz files used to hang
      expect(e.message).toContain(path);
      if (decodable(name)) expect(e.message).toContain(fragment);
      else expect(e.message).toContain('needs the optional package');
    });
  }

  it('make.mjs writes exactly the committed files', async () => {
    const dir = mkdtempSync(join(tmp, 'make-'));
    const src = join(HOSTILE, 'make.mjs');
    // Run a copy whose output folder is `dir`: the script writes beside itself.
    writeFileSync(join(dir, 'make.mjs'), readFileSync(src, 'utf8').replace("join(HERE, '..', '..', 'audio')", JSON.stringify(fixture('audio'))));
    await new Promise<void>((resolve, reject) => execFile(process.execPath, [join(dir, 'make.mjs')], (err) => (err ? reject(err) : resolve())));
    for (const [name] of FIXTURES) expect(readFileSync(join(dir, name)).equals(readFileSync(join(HOSTILE, name))), name).toBe(true);
    expect(readFileSync(join(dir, 'bomb.flac')).equals(readFileSync(join(HOSTILE, 'bomb.flac')))).toBe(true);
  });
});

describe('limits on what a file may ask for', () => {
  const wavAt = (rate: number, frames: number, channels = 1): Buffer =>
    encodeWav(Array.from({ length: channels }, () => Float32Array.from({ length: frames }, (_, i) => Math.sin(i / 7) * 0.5)), rate, 's16');
  const write = (name: string, bytes: Uint8Array): string => {
    const p = join(tmp, name);
    writeFileSync(p, bytes);
    return p;
  };

  it(`sample rates from ${MIN_SAMPLE_RATE} Hz up are read; below, refused with the rate`, async () => {
    expect(parseWav(wavAt(MIN_SAMPLE_RATE, 10)).sampleRate).toBe(MIN_SAMPLE_RATE);
    for (const rate of [1, 2, 100, MIN_SAMPLE_RATE - 1]) {
      expect(() => parseWav(wavAt(rate, 10), 'low.wav')).toThrow(expect.objectContaining({ code: 'ERR_AUDIO_FORMAT', message: expect.stringContaining(`low.wav is not a WAV file we can read: its header declares a sample rate of ${rate} Hz`) }));
    }
    const a = await loadAudio(write('8k.wav', wavAt(8000, 800)), { sampleRate: 44100 });
    expect(a).toMatchObject({ sourceSampleRate: 8000, durationSeconds: 0.1 });
  });

  it('a data chunk running past the end is still read to the end when what it declares is plausible', () => {
    const w = wavAt(44100, 100);
    w.writeUInt32LE(10_000_000, 40); // declares 10 MB of data (5 million frames): a file cut short
    expect(parseWav(w).channels[0].length).toBe(100);
    w.writeUInt32LE(0xffffffff, 40); // a streaming writer's "unknown length"
    expect(parseWav(w).channels[0].length).toBe(100);
  });

  it('maxSeconds refuses longer audio, WAV before decoding it, and is validated', async () => {
    const p = write('half-second.wav', wavAt(22050, 11025, 2));
    expect((await loadAudio(p, { sampleRate: 22050, maxSeconds: 0.5 })).samples.length).toBe(11025);
    const e = await audioError(loadAudio(p, { sampleRate: 22050, maxSeconds: 0.25 }));
    expect(e.message).toBe(`${p} is 0.5 s long (11025 frames at 22050 Hz), more than the 0.25 s allowed here`);
    for (const bad of [0, -1, NaN, Infinity, '5' as unknown as number]) {
      await expect(loadAudio(p, { sampleRate: 22050, maxSeconds: bad })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });

  it.skipIf(!HAS.flac)('a FLAC decompression bomb is stopped while it decodes, by maxSeconds or the sample limit', async () => {
    const path = join(HOSTILE, 'bomb.flac'); // 8 KB that decode to 600 frames of 65535 constant samples (39 million)
    const bytes = readFileSync(path);
    const frames = 600 * 65535;
    // Within the default limit it is just 15 minutes of a constant.
    const whole = await decodeAudio(bytes, path, { maxSamples: MAX_DECODED_SAMPLES });
    expect(whole).toMatchObject({ sampleRate: 44100, channels: 1 });
    expect(whole.mono.length).toBe(frames);
    expect(whole.mono[frames - 1]).toBe(0.5); // 64 / 128

    // Stricter limits stop it after the first chunk, about a third of the way through.
    const decodedBeforeStop = (e: JukeboxError): number => Number(/\((\d+) frames/.exec(e.message)?.[1]);
    let t = performance.now();
    let e = await audioError(loadAudio(path, { sampleRate: 44100, maxSeconds: 10 }));
    expect(e.message).toMatch(new RegExp(`^${path} is at least [\\d.]+ s long \\(\\d+ frames at 44100 Hz\\), more than the 10 s allowed here$`));
    expect(decodedBeforeStop(e)).toBeLessThan(frames / 2);
    expect(performance.now() - t).toBeLessThan(2000);

    t = performance.now();
    e = await audioError(decodeAudio(bytes, path, { maxSamples: 1_000_000 }));
    expect(e.message).toMatch(new RegExp(`^${path} decodes to at least \\d+ samples \\(\\d+ frames of 1 channel\\(s\\)\\), more than the limit of 1000000 samples$`));
    expect(decodedBeforeStop(e)).toBeLessThan(frames / 2);
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('the resampled output is bounded too', async () => {
    // 1 s at 1 kHz asked for at 10 MHz: 10 million samples, over a limit of 5 million.
    const bytes = wavAt(1000, 1000);
    const decoded = await decodeAudio(bytes, 'up.wav', { maxSamples: 5_000_000 });
    expect(decoded.mono.length).toBe(1000);
    // loadAudio uses the default limit; 70,000 frames at 1 kHz to 10 MHz would make 700 million.
    const p = write('up.wav', wavAt(1000, 70_000));
    const e = await audioError(loadAudio(p, { sampleRate: 10_000_000 }));
    expect(e.message).toContain(`${p}: resampling its 70000 frames from 1000 Hz to 10000000 Hz would make 700000000 samples, more than the limit of 691,200,000 samples`);
  });

  it('downsampling beyond what the resampler reaches is an audio error naming the file, not an argument error', async () => {
    const p = write('10mhz.wav', wavAt(10_000_000, 20_000));
    const e = await audioError(loadAudio(p, { sampleRate: 16000 }));
    expect(e.message).toContain(`${p} is sampled at 10000000 Hz, more than 512 times the 16000 Hz asked for`);
  });

  it('WAV headers with odd bit depths or padding never throw anything but ERR_AUDIO_FORMAT', () => {
    const fmt = (bits: number, blockAlign: number, tag = 1): Buffer => {
      const b = Buffer.alloc(24);
      b.write('fmt ', 0, 'latin1');
      b.writeUInt32LE(16, 4);
      b.writeUInt16LE(tag, 8);
      b.writeUInt16LE(1, 10);
      b.writeUInt32LE(44100, 12);
      b.writeUInt16LE(blockAlign, 20);
      b.writeUInt16LE(bits, 22);
      return b;
    };
    const data = (n: number, declared = n): Buffer => {
      const b = Buffer.alloc(8 + n);
      b.write('data', 0, 'latin1');
      b.writeUInt32LE(declared, 4);
      return b;
    };
    const riff = (...chunks: Buffer[]): Buffer => {
      const body = Buffer.concat(chunks);
      const h = Buffer.alloc(12);
      h.write('RIFF', 0, 'latin1');
      h.writeUInt32LE(body.length + 4, 4);
      h.write('WAVE', 8, 'latin1');
      return Buffer.concat([h, body]);
    };
    // A 7-bit sample in a 1-byte slot is a layout WAV allows: read as 8-bit, as libsndfile does.
    expect(parseWav(riff(fmt(7, 1), data(4))).channels[0].length).toBe(4);
    const odd: Buffer[] = [
      riff(fmt(0, 1), data(4)),
      riff(fmt(12, 0), data(4)),
      riff(fmt(64, 8), data(16)), // 64-bit integer PCM
      riff(fmt(32, 4, 3), data(4, 0xfffffffe)),
      riff(fmt(16, 2), Buffer.from('LIST\x03\0\0\0abc', 'latin1'), data(4)), // odd chunk without its pad byte
      riff(Buffer.from('LIST\xff\xff\xff\xff', 'latin1'), fmt(16, 2), data(4)),
      riff(fmt(16, 2)).subarray(0, 30),
    ];
    for (const [i, b] of odd.entries()) {
      try {
        parseWav(b, `odd${i}.wav`);
      } catch (e) {
        expect(isJukeboxError(e, 'ERR_AUDIO_FORMAT'), `odd${i}: ${String(e)}`).toBe(true);
        expect((e as Error).message).toContain(`odd${i}.wav`);
      }
    }
  });

  it('ID3 tags with lying sizes end the format sniffing promptly', async () => {
    const tag = (size: number, footer = false): Buffer =>
      Buffer.from([0x49, 0x44, 0x33, 4, 0, footer ? 0x10 : 0, (size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f]);
    const cases: [string, Buffer][] = [
      ['many-tags.mp3', Buffer.concat(Array.from({ length: 100_000 }, () => tag(0)))], // 1 MB of empty tags, nothing after
      ['past-the-end.mp3', Buffer.concat([tag(2 ** 28 - 1, true), Buffer.from('fLaC', 'latin1')])],
      ['into-itself.mp3', Buffer.concat([tag(0), tag(3), Buffer.from('ID3')])],
      ['cut.mp3', Buffer.from('ID3\x04\0\0\0\0')],
    ];
    for (const [name, bytes] of cases) {
      const t = performance.now();
      const e = await audioError(loadAudio(write(name, bytes), { sampleRate: 44100 }));
      expect(e.message).toContain(name);
      expect(performance.now() - t).toBeLessThan(2000);
    }
    // A well-formed tag in front of FLAC is skipped, as before.
    if (HAS.flac) {
      const flac = readFileSync(fixture('audio/tone.flac'));
      const a = await loadAudio(write('tagged.flac', Buffer.concat([tag(20), Buffer.alloc(20), flac])), { sampleRate: 22050 });
      expect(a.samples.length).toBe(11025);
    }
  });

  it.skipIf(!HAS.opus || !HAS.flac)("keeps the decoders' console chatter off the console, and gives the console back", async () => {
    const original = console.error;
    const spy = vi.spyOn(console, 'error');
    const warn = vi.spyOn(console, 'warn');
    try {
      await audioError(loadAudio(join(HOSTILE, 'corrupt.opus'), { sampleRate: 44100 })); // libopus complains per corrupt packet
      await audioError(loadAudio(join(HOSTILE, 'truncated.flac'), { sampleRate: 44100 }));
      expect(spy).not.toHaveBeenCalled();
      expect(warn).not.toHaveBeenCalled();
      expect(console.error).toBe(spy); // restored to what it was
      console.error('our own message');
      expect(spy).toHaveBeenCalledWith('our own message');
    } finally {
      spy.mockRestore();
      warn.mockRestore();
    }
    expect(console.error).toBe(original);
  });
});

// ---- mutation loop -----------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so every run makes the same mutants. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING_U32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One to three random edits, most of them in the first 512 bytes, where the headers are. */
function mutate(seed: Buffer, r: () => number): Buffer {
  let b = Buffer.from(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const at = (): number => (r() < 0.7 ? int(Math.min(b.length, 512)) : int(b.length));
  for (let edits = 1 + int(3); edits > 0 && b.length > 0; edits--) {
    switch (int(7)) {
      case 0:
        for (let k = 1 + int(8); k > 0; k--) b[at()] ^= 1 << int(8);
        break;
      case 1:
        for (let k = 1 + int(4); k > 0; k--) b[at()] = [0, 1, 0x7f, 0x80, 0xff][int(5)];
        break;
      case 2:
        if (b.length >= 4) b.writeUInt32LE(INTERESTING_U32[int(INTERESTING_U32.length)], Math.min(at(), b.length - 4));
        break;
      case 3:
        b = b.subarray(0, at());
        break;
      case 4: {
        const p = at();
        b = Buffer.concat([b.subarray(0, p), b.subarray(p + 1 + int(256))]);
        break;
      }
      case 5: {
        const p = at();
        const piece = b.subarray(p, p + 1 + int(64));
        b = Buffer.concat([b.subarray(0, p), ...Array.from({ length: 1 + int(16) }, () => piece), b.subarray(p)]);
        break;
      }
      default: {
        const p = at();
        b = Buffer.concat([b.subarray(0, p), Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256))), b.subarray(p)]);
      }
    }
  }
  return b;
}

describe('mutation loop: every mutant loads or is a JukeboxError, promptly', () => {
  const CASES = 300;
  // Per seed: on a quiet 2-core machine 300 cases take 0.3 s (header errors) to 5 s (Ogg
  // Vorbis, whose decoder is slow to set up); a slower machine runs the first part of the
  // same sequence.
  const BUDGET_MS = 5000;
  const seeds = [
    fixture('audio/tone.wav'),
    join(HOSTILE, 'rf64-claims-2e31-frames.wav'),
    fixture('audio/tone.flac'),
    fixture('audio/tone.ogg'),
    fixture('audio/tone.opus'),
    fixture('audio/tone.mp3'),
  ];
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  beforeAll(() => void process.on('unhandledRejection', onUnhandled));
  afterAll(() => void process.off('unhandledRejection', onUnhandled));

  for (const [k, seedPath] of seeds.entries()) {
    const name = basename(seedPath);
    it.skipIf(!decodable(name))(`${name}: ${CASES} mutants (seeded)`, async () => {
      const seed = readFileSync(seedPath);
      const r = prng(1000 + k);
      const path = join(tmp, `mutant-${name}`);
      const outcomes: Record<string, number> = {};
      let slowest = 0;
      let done = 0;
      const start = performance.now();
      const errorSpy = vi.spyOn(console, 'error');
      const warnSpy = vi.spyOn(console, 'warn');
      try {
        for (; done < CASES && performance.now() - start < BUDGET_MS; done++) {
          const bytes = mutate(seed, r);
          writeFileSync(path, bytes);
          const t = performance.now();
          try {
            const a = await loadAudio(path, { sampleRate: 44100 });
            expect(a.samples.length).toBeGreaterThan(0);
            expect(a.samples.every((v) => Number.isFinite(v))).toBe(true);
            outcomes.success = (outcomes.success ?? 0) + 1;
          } catch (e) {
            if (!isJukeboxError(e)) {
              writeFileSync(join(tmp, `raw-${done}-${name}`), bytes);
              throw new Error(`mutant ${done} of ${name} failed with a raw ${(e as Error)?.name}: ${String((e as Error)?.message ?? e)}`, { cause: e });
            }
            expect(e.message).toContain(path);
            outcomes[e.code] = (outcomes[e.code] ?? 0) + 1;
          }
          slowest = Math.max(slowest, performance.now() - t);
        }
        // The decoders print about corrupt frames; none of it may reach the console.
        expect(errorSpy).not.toHaveBeenCalled();
        expect(warnSpy).not.toHaveBeenCalled();
      } finally {
        errorSpy.mockRestore();
        warnSpy.mockRestore();
      }
      console.log(`${name}: ${done} mutants in ${(performance.now() - start).toFixed(0)} ms (slowest ${slowest.toFixed(0)} ms): ${JSON.stringify(outcomes)}`);
      expect(done).toBeGreaterThanOrEqual(30); // a loaded machine may not finish all 300 in the budget
      expect(slowest).toBeLessThan(3000);
      await new Promise((resolve) => setTimeout(resolve, 10)); // let any stray rejection surface
      expect(unhandled).toEqual([]);
    });
  }
});

// ---- the CLI -----------------------------------------------------------------------------

describe('hostile audio files: `jukebox encode` prints one line and exits 1', () => {
  const bin = join(repoRoot, 'bin', 'jukebox.js');
  const vqvae = join(tmp, 'vqvae.safetensors');

  function jukebox(...args: string[]): Promise<{ code: number | null; killed: boolean; stderr: string; ms: number }> {
    const t = performance.now();
    return new Promise((resolve) => {
      execFile(process.execPath, [bin, ...args], { cwd: tmp, timeout: 20_000, env: { ...process.env, CI: '1' } }, (err, _stdout, stderr) => {
        const e = err as (Error & { code?: number; killed?: boolean }) | null;
        resolve({ code: e ? (e.code ?? null) : 0, killed: e?.killed ?? false, stderr, ms: performance.now() - t });
      });
    });
  }

  beforeAll(async () => {
    const r = await jukebox('convert', fixture('vqvae/vqvae.legacy.pth.tar'), '-o', vqvae);
    expect(r.code, r.stderr).toBe(0);
  });

  for (const [name] of FIXTURES) {
    it(name, async () => {
      const file = join(HOSTILE, name);
      const r = await jukebox('encode', file, '--vqvae', vqvae, '-o', join(tmp, 'out.npz'));
      expect(r.killed, `${name} ran past 20 s`).toBe(false);
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^jukebox: error: /);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toMatch(/ \[ERR_AUDIO_FORMAT\]$/);
      expect(r.ms).toBeLessThan(10_000); // ~0.5 s: start, load the VQ-VAE, refuse the file
    });
  }
});
