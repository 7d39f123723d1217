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
import { audioLimits, checkAudioSize, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, sampleLimitLabel, type AudioLimits } from './limits.js';
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
  /**
   * Refuse (ERR_AUDIO_FORMAT) audio longer than this many seconds. WAV is checked from its
   * header before anything is decoded, compressed formats as they decode, so a long or
   * hostile upload costs no more than this much decoding. Without it the only bound is
   * MAX_DECODED_SAMPLES (an hour of 192 kHz mono).
   */
  maxSeconds?: number;
}

type Container = 'wav' | 'flac' | 'vorbis' | 'opus' | 'mp3';

/** A decoded file, already mixed down to mono (the only thing we keep). */
export interface DecodedAudio {
  mono: Float32Array;
  sampleRate: number;
  channels: number;
}

export async function loadAudio(path: string, opts: LoadAudioOptions): Promise<LoadedAudio> {
  const sampleRate = opts.sampleRate;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `loadAudio: sampleRate must be a positive integer, got ${String(sampleRate)}`);
  }
  if (opts.mono !== undefined && opts.mono !== true) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', 'loadAudio: only mono output is supported (mono: true)');
  }
  const limits = audioLimits(opts.maxSeconds);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  const decoded = await decodeAudio(bytes, path, limits);
  const samples = resampleChecked(decoded, sampleRate, path, limits);
  return {
    samples,
    sampleRate,
    sourceSampleRate: decoded.sampleRate,
    sourceChannels: decoded.channels,
    durationSeconds: samples.length / sampleRate,
  };
}

/**
 * Decode a file held in memory to mono at its own rate. `path` names it in errors. Every
 * failure, whatever the decoder underneath threw or returned, is an ERR_AUDIO_FORMAT naming
 * the file; `limits` bounds how much it may decode to (loadAudio passes MAX_DECODED_SAMPLES
 * and the caller's maxSeconds).
 */
export async function decodeAudio(bytes: Uint8Array, path: string, limits: AudioLimits): Promise<DecodedAudio> {
  const container = detectContainer(bytes, path);
  let decoded: DecodedAudio;
  if (container === 'wav') {
    const wav = parseWav(bytes, path, limits);
    decoded = { mono: downmix(wav.channels), sampleRate: wav.sampleRate, channels: wav.channels.length };
  } else {
    decoded = await decodeWithPackage(container, bytes, path, limits);
  }
  if (decoded.mono.length === 0) throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} contains no audio samples`);
  // NaN or infinity would pass through the resampler and the model and come out as garbage
  // codes; a float WAV or a decoder that produces them holds no usable audio.
  const bad = firstNonFinite(decoded.mono);
  if (bad >= 0) {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} holds a non-finite sample (${decoded.mono[bad]} at frame ${bad}); its audio data is corrupt`);
  }
  return decoded;
}

function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v - v !== 0) return i; // NaN and +-Infinity, without a call per sample
  }
  return -1;
}

/**
 * Resample to the requested rate after checking that the result is something we should
 * compute: at least one sample, within the resampler's reach, and within the sample limit
 * (the work is proportional to the output, so a low source rate must not multiply it).
 */
function resampleChecked(decoded: DecodedAudio, sampleRate: number, path: string, limits: AudioLimits): Float32Array {
  const frames = decoded.mono.length;
  const srIn = decoded.sampleRate;
  if (Math.floor(frames * (sampleRate / srIn)) < 1) {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} holds ${frames} sample(s), too few to resample to ${sampleRate} Hz`);
  }
  const outLength = Math.ceil(frames * (sampleRate / srIn));
  if (outLength > limits.maxSamples) {
    throw new JukeboxError(
      'ERR_AUDIO_FORMAT',
      `${path}: resampling its ${frames} frames from ${srIn} Hz to ${sampleRate} Hz would make ${outLength} samples, more than the limit of ${sampleLimitLabel(limits)}`,
    );
  }
  if (srIn > sampleRate * MAX_DOWNSAMPLING) {
    throw new JukeboxError(
      'ERR_AUDIO_FORMAT',
      `${path} is sampled at ${srIn} Hz, more than ${MAX_DOWNSAMPLING} times the ${sampleRate} Hz asked for, which the resampler cannot reach in one step`,
    );
  }
  return resample(decoded.mono, srIn, sampleRate);
}

/** resample() refuses to shrink by more than this (its filter table has 512 steps per zero crossing). */
const MAX_DOWNSAMPLING = 512;

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

/**
 * Offset just past any ID3v2 tags at `pos` (their size is a 28-bit "synchsafe" integer).
 * Each tag moves on by at least its 10-byte header, so a file of chained or lying tags ends
 * the loop within length / 10 steps; the result may lie past the end (the caller clamps).
 */
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
// does not need the optional packages to be installed. Nothing in it is trusted: the
// decoders return whatever their WebAssembly left in memory (a result with no samples can
// carry thousands of empty "channels" and a junk sample rate), so take() checks each field.
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
  /** Decodes the whole frames (or Ogg pages) in `data` and keeps any partial one for the next call. */
  decode(data: Uint8Array): WasmDecodedAudio | Promise<WasmDecodedAudio>;
  /** All but mpg123-decoder: decodes what the parser still holds, at the end of the input. */
  flush?(): Promise<WasmDecodedAudio>;
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

// Compressed audio goes to the decoder a chunk at a time, so that what it produces can be
// checked against the limits as it comes: each call decodes everything its input holds
// before returning, and the worst legal streams expand enormously (a FLAC frame of 65,535
// constant samples on 8 channels takes about 27 bytes, ~19,000 samples per byte; an Ogg
// Vorbis packet of 4,096 silent samples per channel takes about 3). A chunk is sized so
// that even at WORST_EXPANSION it stays within the budget left, within [MIN_CHUNK, MAX_CHUNK]:
// ~10 KB at the default limit, which costs nothing measurable (a 31 MB FLAC decodes in the
// same time as in one call) and gives exactly the samples decoding at once does. MIN_CHUNK
// is what a tight maxSeconds gets, as does any maxSeconds until the first audio tells the
// rate: small enough that one chunk of the worst stream stays in the tens of millions of
// samples, large enough that Vorbis headers (a few KB, with a costly call per chunk until
// the first audio packet) take a call or two.
const WORST_EXPANSION = 1 << 16; // samples per input byte
const MIN_CHUNK = 4 << 10;
const MAX_CHUNK = 1 << 16;

async function decodeWithPackage(container: Exclude<Container, 'wav'>, bytes: Uint8Array, path: string, limits: AudioLimits): Promise<DecodedAudio> {
  const { label, pkg, exportName } = DECODERS[container];
  const mod = await importOptional(pkg);
  if (!mod) {
    throw new JukeboxError(
      'ERR_AUDIO_FORMAT',
      `${path} is ${label}; decoding it needs the optional package ${pkg} (npm install ${pkg}), or convert it to WAV first`,
    );
  }
  const Decoder = mod[exportName] as (new () => WasmDecoder) | undefined;
  if (typeof Decoder !== 'function') {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `the optional package ${pkg} is installed but has no ${exportName}; reinstall it (npm install ${pkg})`);
  }
  const fail = (why: string, cause?: unknown): never => {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} could not be decoded as ${label}: ${why}`, cause === undefined ? undefined : { cause });
  };
  const audio = bytes.subarray(Math.min(skipId3(bytes, 0), bytes.length)); // ID3 tags (on MP3, sometimes FLAC) are only metadata

  // Each chunk's output is mixed down as it arrives (the mean is taken sample by sample, so
  // this is exactly downmix() of the whole): only mono is kept, a channel's worth of memory.
  const parts: Float32Array[] = [];
  let frames = 0;
  let samples = 0;
  let channels = 0;
  let sampleRate = 0;
  let firstError: string | undefined;

  const take = (out: unknown): void => {
    if (typeof out !== 'object' || out === null) return fail(`the decoder returned ${String(out)} instead of audio`);
    const r = out as Partial<WasmDecodedAudio>;
    if (Array.isArray(r.errors) && r.errors.length > 0 && firstError === undefined) firstError = errorText(r.errors[0]);
    const n = r.samplesDecoded;
    // Nothing decoded yet (the headers), or only corrupt frames, which are skipped; the
    // other fields are junk then.
    if (n === 0) return;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return fail(`the decoder reported ${String(n)} samples`);
    const data = r.channelData;
    if (!Array.isArray(data) || data.length === 0 || data.length > MAX_CHANNELS) {
      return fail(`the decoder returned ${Array.isArray(data) ? data.length : 'no'} channels for ${n} samples`);
    }
    if (data.some((c) => !(c instanceof Float32Array) || c.length < n)) {
      return fail(`its channels decoded to different lengths (${data.map((c) => (c as { length?: unknown })?.length).join(', ')} for ${n} samples)`);
    }
    const rate = r.sampleRate;
    if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < MIN_SAMPLE_RATE || rate > MAX_SAMPLE_RATE) {
      return fail(`it declares a sample rate of ${String(rate)} Hz; audio runs from ${MIN_SAMPLE_RATE} to ${MAX_SAMPLE_RATE} Hz`);
    }
    // Chained Ogg streams (or a corrupt header) can change the rate: the parts could not
    // be joined into one signal.
    if (sampleRate !== 0 && rate !== sampleRate) fail(`its sample rate changes from ${sampleRate} Hz to ${rate} Hz part-way through`);
    sampleRate = rate;
    const chans = data.map((c) => (c.length === n ? c : c.subarray(0, n)));
    if (container === 'flac' && r.bitDepth) {
      if (!Number.isInteger(r.bitDepth) || r.bitDepth < 4 || r.bitDepth > 32) fail(`it declares ${String(r.bitDepth)}-bit samples`);
      rescaleFlac(chans, r.bitDepth);
    }
    parts.push(downmix(chans));
    frames += n;
    samples += n * chans.length;
    channels = Math.max(channels, chans.length);
    checkAudioSize(path, frames, channels, sampleRate, limits, true);
  };

  const restoreConsole = quietDecoderLogs();
  let decoder: WasmDecoder | undefined;
  try {
    decoder = new Decoder();
    await decoder.ready;
    for (let pos = 0; pos < audio.length; ) {
      let budget = limits.maxSamples - samples;
      if (limits.maxSeconds !== undefined) budget = sampleRate ? Math.min(budget, (limits.maxSeconds * sampleRate - frames) * channels) : 0;
      const size = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.floor(budget / WORST_EXPANSION)));
      take(await decoder.decode(audio.subarray(pos, pos + size)));
      pos += size;
    }
    if (decoder.flush) take(await decoder.flush());
  } catch (e) {
    if (e instanceof JukeboxError) throw e;
    fail(describeThrown(e), e);
  } finally {
    restoreConsole();
    try {
      decoder?.free();
    } catch {
      // A decoder whose WebAssembly trapped on corrupt data can trap again when freed; its
      // memory belongs to its own instance and goes when that is collected.
    }
  }

  // Decoding errors are fatal only when nothing decoded: like ffmpeg and libsndfile, we skip a
  // few corrupt frames in an otherwise good file.
  if (frames === 0) {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${path} holds no decodable ${label} audio${firstError ? `: ${firstError}` : ''}`);
  }
  if (container === 'opus') frames = Math.min(frames, oggOpusLength(bytes) ?? frames);
  return { mono: joinParts(parts, frames), sampleRate, channels };
}

/** The first `length` samples of the parts, end to end. */
function joinParts(parts: Float32Array[], length: number): Float32Array {
  if (parts.length === 1) return parts[0].subarray(0, length);
  const out = new Float32Array(length);
  let pos = 0;
  for (const p of parts) {
    if (pos >= length) break;
    out.set(p.length <= length - pos ? p : p.subarray(0, length - pos), pos);
    pos += p.length;
  }
  return out;
}

function errorText(e: unknown): string {
  const m = (e as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : String(e);
}

/** What a decoder's exception says about the file. Emscripten's abort() throws bare strings. */
function describeThrown(e: unknown): string {
  if (e instanceof Error) {
    // WebAssembly traps (memory access out of bounds, unreachable, divide by zero): the
    // decoder's C code ran off the end of a corrupt stream.
    if (e.name === 'RuntimeError') return `its data is corrupt (the decoder crashed: ${e.message})`;
    return `its data is corrupt or truncated (the decoder failed: ${e.name}: ${e.message})`;
  }
  return `its data is corrupt (the decoder aborted${typeof e === 'string' && e !== '' ? `: ${e}` : ''})`;
}

// The decoders print each corrupt frame to the console (console.error from the FLAC, Opus
// and MP3 decoders, console.warn/error from their Ogg and FLAC parser). What they print
// also comes back in a result's `errors`, which our message quotes when it matters, and on
// the CLI it would break the one-line error. While any decode runs, console output whose
// first argument starts as theirs do is dropped; anything else passes through.
const DECODER_LOG = /^(?:@wasm-audio-decoders\/|mpg123-decoder|ogg-opus-decoder|opus-decoder|codec-parser|libopus )/;
let quietCount = 0;
let unquiet: (() => void) | undefined;

function quietDecoderLogs(): () => void {
  if (quietCount++ === 0) {
    const { error, warn } = console;
    const filtered =
      (write: (...args: unknown[]) => void) =>
      (...args: unknown[]): void => {
        if (typeof args[0] === 'string' && DECODER_LOG.test(args[0])) return;
        write.apply(console, args);
      };
    const quietError = filtered(error);
    const quietWarn = filtered(warn);
    console.error = quietError;
    console.warn = quietWarn;
    unquiet = () => {
      // Put back only what is still ours: whatever replaced it meanwhile stays.
      if (console.error === quietError) console.error = error;
      if (console.warn === quietWarn) console.warn = warn;
    };
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--quietCount === 0) unquiet?.();
  };
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
