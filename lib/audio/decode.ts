/**
 * Load an audio file the way the original Jukebox does (`librosa.load(path, sr=44100,
 * mono=True)`): decode it, average the channels, resample with resampy's kaiser_best filter.
 *
 * WAV is read here; FLAC, Ogg Vorbis, Ogg Opus and MP3 are decoded by optional WebAssembly
 * packages, imported only when such a file turns up so that installs without them stay small.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { JukeboxError } from '../errors.js';
import { resample } from './resample.js';
import { encodeWav, parseWav, type WavEncoding } from './wav.js';

export interface LoadedAudio {
  /** Mono samples at `sampleRate`. */
  samples: Float32Array;
  sampleRate: number;
  sourceSampleRate: number;
  sourceChannels: number;
  /** samples.length / sampleRate */
  durationSeconds: number;
}

export interface LoadAudioOptions {
  sampleRate: number;
  /** Only mono output is supported: Jukebox's models are mono. */
  mono?: true;
}

type Container = 'wav' | 'flac' | 'vorbis' | 'opus' | 'mp3';

interface Decoded {
  channels: Float32Array[];
  sampleRate: number;
}

export async function loadAudio(path: string, opts: LoadAudioOptions): Promise<LoadedAudio> {
  const sampleRate = opts.sampleRate;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `loadAudio: sampleRate must be a positive integer, got ${String(sampleRate)}`);
  }
  if (opts.mono !== undefined && opts.mono !== true) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', 'loadAudio: only mono output is supported (mono: true)');
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  const container = detectContainer(bytes, path);
  const decoded = container === 'wav' ? parseWav(bytes, path) : await decodeWithPackage(container, bytes, path);
  const frames = decoded.channels.length > 0 ? decoded.channels[0].length : 0;
  if (frames === 0) throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} contains no audio samples`);
  if (Math.floor(frames * (sampleRate / decoded.sampleRate)) < 1) {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} holds ${frames} sample(s), too few to resample to ${sampleRate} Hz`);
  }

  const samples = resample(downmix(decoded.channels), decoded.sampleRate, sampleRate);
  return {
    samples,
    sampleRate,
    sourceSampleRate: decoded.sampleRate,
    sourceChannels: decoded.channels.length,
    durationSeconds: samples.length / sampleRate,
  };
}

/**
 * The mean of the channels, as librosa's `to_mono` (np.mean over float32) computes it: summed
 * channel by channel in float32, then divided. For stereo that is exactly 0.5*L + 0.5*R.
 */
export function downmix(channels: Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0];
  const out = channels[0].slice();
  for (let c = 1; c < channels.length; c++) {
    const ch = channels[c];
    for (let i = 0; i < out.length; i++) out[i] += ch[i]; // each store rounds to float32
  }
  const count = channels.length;
  for (let i = 0; i < out.length; i++) out[i] /= count;
  return out;
}

/** Write mono samples as a WAV file (the only format written; see encodeWav for 's16'/'f32'). */
export async function writeAudio(path: string, samples: Float32Array, sampleRate: number, format: WavEncoding): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== '' && ext !== '.wav' && ext !== '.wave') {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `writeAudio writes WAV files only; ${path} asks for ${ext}`);
  }
  const bytes = encodeWav(samples, sampleRate, format);
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

function ascii(bytes: Uint8Array, pos: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(pos, pos + length));
}

/** An MPEG-1/2/2.5 audio frame header (layers I-III) starts at `pos`. */
function isMpegFrame(b: Uint8Array, pos: number): boolean {
  if (pos + 4 > b.length || b[pos] !== 0xff || (b[pos + 1] & 0xe0) !== 0xe0) return false;
  const version = (b[pos + 1] >> 3) & 3; // 1 is reserved
  const layer = (b[pos + 1] >> 1) & 3; // 0 is reserved (and is what AAC's ADTS header has)
  const bitrate = b[pos + 2] >> 4; // 15 is invalid
  const rate = (b[pos + 2] >> 2) & 3; // 3 is reserved
  return version !== 1 && layer !== 0 && bitrate !== 15 && rate !== 3;
}

/** Offset just past any ID3v2 tags at `pos` (their size is a 28-bit "synchsafe" integer). */
function skipId3(b: Uint8Array, pos: number): number {
  while (pos + 10 <= b.length && ascii(b, pos, 3) === 'ID3') {
    const size = ((b[pos + 6] & 0x7f) << 21) | ((b[pos + 7] & 0x7f) << 14) | ((b[pos + 8] & 0x7f) << 7) | (b[pos + 9] & 0x7f);
    const footer = b[pos + 5] & 0x10 ? 10 : 0;
    pos += 10 + size + footer;
  }
  return pos;
}

// Formats people try that we cannot decode, recognised so the error can say what the file is.
const KNOWN_UNSUPPORTED: [test: (b: Uint8Array) => boolean, name: string][] = [
  [(b) => ascii(b, 4, 4) === 'ftyp', 'an MP4/M4A container (AAC or ALAC)'],
  [(b) => ascii(b, 0, 4) === 'FORM' && /^AIF[FC]$/.test(ascii(b, 8, 4)), 'AIFF'],
  [(b) => b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3, 'a Matroska/WebM container'],
  [(b) => b[0] === 0xff && (b[1] & 0xf6) === 0xf0, 'raw AAC (ADTS)'],
];

function detectContainer(b: Uint8Array, path: string): Container {
  const fail = (what: string): never => {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} is ${what}; supported formats are WAV, FLAC, Ogg Vorbis, Ogg Opus and MP3`);
  };
  if (b.length === 0) fail('an empty file');
  const magic = ascii(b, 0, 4);
  if (magic === 'RIFF' || magic === 'RF64' || magic === 'BW64' || magic === 'RIFX') return 'wav';
  if (magic === 'OggS') {
    // The first page carries the codec's identification packet right after the segment table.
    const body = 27 + (b.length > 26 ? b[26] : 0);
    if (ascii(b, body + 1, 6) === 'vorbis' && b[body] === 1) return 'vorbis';
    if (ascii(b, body, 8) === 'OpusHead') return 'opus';
    if (ascii(b, body + 1, 4) === 'FLAC') fail('FLAC inside an Ogg container, which is not supported (use a native .flac file)');
    return fail('an Ogg file whose codec is neither Vorbis nor Opus');
  }
  const start = skipId3(b, 0);
  if (ascii(b, start, 4) === 'fLaC') return 'flac';
  if (isMpegFrame(b, start)) return 'mp3';
  for (const [test, name] of KNOWN_UNSUPPORTED) if (test(b)) fail(name);
  const shown = Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');
  return fail(`not in a format we recognise (it starts with bytes ${shown})`);
}

// The shape shared by the @wasm-audio-decoders family, declared here so that type-checking
// does not need the optional packages to be installed.
interface WasmDecodedAudio {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
  /** FLAC only: bits per sample of the stream. */
  bitDepth?: number;
  errors: { message: string }[];
}
interface WasmDecoder {
  ready: Promise<void>;
  free(): void;
  decode(data: Uint8Array): WasmDecodedAudio | Promise<WasmDecodedAudio>;
  decodeFile?(data: Uint8Array): Promise<WasmDecodedAudio>;
}

const DECODERS: Record<Exclude<Container, 'wav'>, { label: string; pkg: string; exportName: string }> = {
  flac: { label: 'FLAC', pkg: '@wasm-audio-decoders/flac', exportName: 'FLACDecoder' },
  vorbis: { label: 'Ogg Vorbis', pkg: '@wasm-audio-decoders/ogg-vorbis', exportName: 'OggVorbisDecoder' },
  opus: { label: 'Ogg Opus', pkg: 'ogg-opus-decoder', exportName: 'OggOpusDecoder' },
  mp3: { label: 'MP3', pkg: 'mpg123-decoder', exportName: 'MPEGDecoder' },
};

/** Import an optional decoder package by name; returns undefined when it is not installed. */
async function importOptional(pkg: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(pkg)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && (e as Error).message.includes(pkg)) return undefined;
    throw new JukeboxError('ERR_AUDIO_FORMAT', `the optional package ${pkg} is installed but failed to load: ${(e as Error).message}`, { cause: e });
  }
}

async function decodeWithPackage(container: Exclude<Container, 'wav'>, bytes: Uint8Array, path: string): Promise<Decoded> {
  const { label, pkg, exportName } = DECODERS[container];
  const mod = await importOptional(pkg);
  if (!mod) {
    throw new JukeboxError(
      'ERR_AUDIO_FORMAT',
      `${path} is ${label}; decoding it needs the optional package ${pkg} (npm install ${pkg}), or convert it to WAV first`,
    );
  }
  const Decoder = mod[exportName] as new () => WasmDecoder;
  const audio = bytes.subarray(skipId3(bytes, 0)); // ID3 tags (on MP3, sometimes FLAC) are only metadata
  const decoder = new Decoder();
  let result: WasmDecodedAudio;
  try {
    await decoder.ready;
    // decodeFile reads a whole file; mpg123-decoder has only decode, which takes any run of frames.
    result = await (decoder.decodeFile ? decoder.decodeFile(audio) : decoder.decode(audio));
  } catch (e) {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} could not be decoded as ${label}: ${(e as Error).message}`, { cause: e });
  } finally {
    decoder.free();
  }
  // Decoding errors are fatal only when nothing decoded: like ffmpeg and libsndfile, we skip a
  // few corrupt frames in an otherwise good file.
  if (result.samplesDecoded === 0) {
    const why = result.errors.length > 0 ? `: ${result.errors[0].message}` : '';
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} holds no decodable ${label} audio${why}`);
  }
  let frames = result.samplesDecoded;
  if (container === 'opus') frames = Math.min(frames, oggOpusLength(bytes) ?? frames);
  const channels = result.channelData.map((c) => c.subarray(0, frames));
  if (container === 'flac' && result.bitDepth) rescaleFlac(channels, result.bitDepth);
  return { channels, sampleRate: result.sampleRate };
}

/**
 * Samples in an Ogg Opus stream: the last page's granule position less the pre-skip (RFC 7845).
 * ogg-opus-decoder drops the pre-skip but not the encoder's padding at the end, which ffmpeg
 * (and so librosa) trims; undefined when the file does not say.
 */
function oggOpusLength(b: Uint8Array): number | undefined {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const head = 27 + b[26]; // the OpusHead packet, as found by detectContainer
  if (head + 12 > b.length) return undefined;
  const preSkip = view.getUint16(head + 10, true);
  for (let pos = b.length - 27; pos >= 0; pos--) {
    if (b[pos] === 0x4f && b[pos + 1] === 0x67 && b[pos + 2] === 0x67 && b[pos + 3] === 0x53 && b[pos + 4] === 0) {
      const granule = Number(view.getBigInt64(pos + 6, true));
      return granule > preSkip ? granule - preSkip : undefined;
    }
  }
  return undefined;
}

/**
 * The FLAC decoder divides an n-bit sample by 2^(n-1) - 1; libsndfile, which librosa reads
 * FLAC with, divides by 2^(n-1). Recover the integer and divide again, so that FLAC decodes to
 * exactly what the same audio in a WAV file does.
 */
function rescaleFlac(channels: Float32Array[], bitDepth: number): void {
  const full = 2 ** (bitDepth - 1);
  const wasmScale = full - 1;
  for (const ch of channels) {
    for (let i = 0; i < ch.length; i++) ch[i] = Math.round(ch[i] * wasmScale) / full;
  }
}
