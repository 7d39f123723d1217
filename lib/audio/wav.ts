/**
 * WAV (RIFF/WAVE and RF64/BW64) reading and writing, with no dependencies.
 *
 * Reading converts every supported sample format to float32 the way soundfile/libsndfile
 * (and so librosa) does: an n-bit integer is divided by 2^(n-1), 8-bit unsigned samples are
 * (v - 128) / 128, floats pass through (64-bit floats are rounded to float32).
 */
import { JukeboxError } from '../errors.js';
import {
  checkAudioSize,
  MAX_CHANNELS,
  MAX_DECODED_SAMPLES,
  MAX_SAMPLE_RATE,
  MIN_SAMPLE_RATE,
  sampleLimitLabel,
  type AudioLimits,
} from './limits.js';

export interface WavData {
  sampleRate: number;
  /** One array per channel, de-interleaved. */
  channels: Float32Array[];
  format: 'pcm' | 'float';
  /** Bits of each stored sample (the container size: 8, 16, 24, 32 or 64). */
  bitsPerSample: number;
}

export type WavEncoding = 's16' | 'f32';

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT = 0x0003;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Names for the codec ids people actually meet, so the error says what the file is. */
const CODEC_NAMES: Record<number, string> = {
  0x0002: 'Microsoft ADPCM',
  0x0006: 'A-law',
  0x0007: 'mu-law',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0050: 'MPEG',
  0x0055: 'MPEG Layer 3',
  0x00ff: 'AAC',
  0x1610: 'HE-AAC',
  0xf1ac: 'FLAC',
};

// The tail every KSDATAFORMAT_SUBTYPE_* GUID shares; its first two bytes are the codec id.
const SUBFORMAT_GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fourCC(view: DataView, pos: number): string {
  return String.fromCharCode(
    view.getUint8(pos),
    view.getUint8(pos + 1),
    view.getUint8(pos + 2),
    view.getUint8(pos + 3),
  );
}

function codecLabel(tag: number): string {
  const hex = `0x${tag.toString(16).padStart(4, '0')}`;
  return CODEC_NAMES[tag] ? `${CODEC_NAMES[tag]} (format tag ${hex})` : `format tag ${hex}`;
}

interface FmtChunk {
  codec: number; // PCM or IEEE float after resolving WAVE_FORMAT_EXTENSIBLE
  channels: number;
  sampleRate: number;
  blockAlign: number;
  bytesPerSample: number;
}

function parseFmt(view: DataView, pos: number, size: number, fail: (m: string) => never): FmtChunk {
  if (size < 16) fail(`its fmt chunk is ${size} bytes, shorter than the 16 a WAV header needs`);
  let codec = view.getUint16(pos, true);
  const channels = view.getUint16(pos + 2, true);
  const sampleRate = view.getUint32(pos + 4, true);
  const blockAlign = view.getUint16(pos + 12, true);
  const bits = view.getUint16(pos + 14, true);
  if (codec === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) fail(`its WAVE_FORMAT_EXTENSIBLE fmt chunk is ${size} bytes, shorter than 40`);
    codec = view.getUint16(pos + 24, true);
    for (let i = 0; i < SUBFORMAT_GUID_TAIL.length; i++) {
      if (view.getUint8(pos + 26 + i) !== SUBFORMAT_GUID_TAIL[i]) {
        fail('its WAVE_FORMAT_EXTENSIBLE sub-format GUID is not a standard audio sub-format');
      }
    }
  }
  if (codec !== WAVE_FORMAT_PCM && codec !== WAVE_FORMAT_IEEE_FLOAT) {
    fail(`it is encoded as ${codecLabel(codec)}; only PCM and IEEE float WAV are supported (convert it to PCM WAV or FLAC)`);
  }
  if (channels === 0 || channels > MAX_CHANNELS) fail(`its header declares ${channels} channels; we read 1 to ${MAX_CHANNELS}`);
  // The lower bound matters as much as the upper one: a 1 Hz file of a few thousand frames
  // would be resampled to hundreds of millions of samples at the model's rate.
  if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
    fail(`its header declares a sample rate of ${sampleRate} Hz; audio runs from ${MIN_SAMPLE_RATE} to ${MAX_SAMPLE_RATE} Hz`);
  }
  // Samples are stored in whole bytes, left-justified: a 20-bit sample sits in a 3-byte slot
  // and is read (and scaled) as a 24-bit one, as libsndfile does. The container size comes
  // from blockAlign, which readers must trust over wBitsPerSample.
  const bytesPerSample = blockAlign / channels;
  const valid =
    Number.isInteger(bytesPerSample) &&
    bits > 0 &&
    bits <= bytesPerSample * 8 &&
    (codec === WAVE_FORMAT_PCM ? bytesPerSample <= 4 : bytesPerSample === 4 || bytesPerSample === 8);
  if (!valid) {
    fail(
      `its header declares ${bits}-bit ${codec === WAVE_FORMAT_PCM ? 'PCM' : 'float'} samples with a block ` +
        `size of ${blockAlign} bytes for ${channels} channel(s), which is not a layout WAV allows`,
    );
  }
  return { codec, channels, sampleRate, blockAlign, bytesPerSample };
}

/**
 * Parse a WAV file held in memory. `name` (usually the path) is only used in error messages.
 * Unknown chunks are skipped; a data chunk longer than the file is cut to the whole frames
 * present, as libsndfile and most readers do (a recording cut short, a download cut off),
 * unless what it declares could never be loaded anyway (see below). A data size of
 * 0xFFFFFFFF, what streaming writers leave when they cannot seek back, means "to the end".
 * `limits` bounds what the file may decode to (by default MAX_DECODED_SAMPLES), checked
 * before any sample is decoded.
 */
export function parseWav(buf: Uint8Array, name = '<buffer>', limits: AudioLimits = { maxSamples: MAX_DECODED_SAMPLES }): WavData {
  const fail = (why: string): never => {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${name} is not a WAV file we can read: ${why}`);
  };
  if (buf.length < 12) fail(`it is only ${buf.length} bytes long`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const riff = fourCC(view, 0);
  if (riff === 'RIFX') fail('it is big-endian (RIFX), which is not supported');
  if ((riff !== 'RIFF' && riff !== 'RF64' && riff !== 'BW64') || fourCC(view, 8) !== 'WAVE') {
    fail('it does not start with a RIFF/WAVE header');
  }
  const rf64 = riff !== 'RIFF';

  let fmt: FmtChunk | undefined;
  let dataPos = -1;
  let dataSize = 0;
  let declaredSize = 0; // what the data chunk claims, when it says (-1: "to the end of the file")
  let ds64DataSize = -1; // RF64 keeps the real data size in its ds64 chunk
  let pos = 12;
  // Every step moves pos forward by at least 8, so the walk ends however the sizes lie; they
  // are doubles (a ds64 size can reach 2^64), so nothing here wraps around.
  while (pos + 8 <= buf.length) {
    const id = fourCC(view, pos);
    let size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === 'ds64' && rf64) {
      if (size < 24 || body + 24 > buf.length) fail('its ds64 chunk is truncated');
      ds64DataSize = Number(view.getBigUint64(body + 8, true));
    } else if (id === 'fmt ') {
      if (body + Math.min(size, 40) > buf.length) fail('its fmt chunk is truncated');
      fmt = parseFmt(view, body, size, fail);
    } else if (id === 'data') {
      declaredSize = size;
      if (size === 0xffffffff) {
        if (rf64) {
          if (ds64DataSize < 0) fail('it is RF64 but has no ds64 chunk before its data chunk');
          size = declaredSize = ds64DataSize;
        } else {
          declaredSize = -1;
        }
      }
      dataPos = body;
      dataSize = Math.min(size, buf.length - body);
      if (fmt) break; // everything needed is known; what follows (LIST, id3 ...) is metadata
    }
    pos = body + size + (size % 2); // chunks are padded to an even length
  }
  if (!fmt) return fail('it has no fmt chunk');
  if (dataPos < 0) fail('it has no data chunk');

  // A data chunk that runs past the end of the file is read as far as it goes; but one that
  // declares more than any file may decode to is not a recording cut short, it is a corrupt
  // or hostile header (a few hundred bytes claiming 2^31 frames), and says so.
  const declaredFrames = Math.floor(declaredSize / fmt.blockAlign);
  if (declaredSize > dataSize && declaredFrames * fmt.channels > limits.maxSamples) {
    fail(
      `its data chunk declares ${declaredSize} bytes (${declaredFrames} frames of ${fmt.channels} channel(s)), ` +
        `more than the limit of ${sampleLimitLabel(limits)}, ` +
        `and the file holds only ${dataSize} bytes of it`,
    );
  }
  const frames = Math.floor(dataSize / fmt.blockAlign);
  if (frames === 0) {
    fail(dataSize === 0 ? 'its data chunk is empty' : `its data chunk holds ${dataSize} bytes, less than one ${fmt.blockAlign}-byte sample frame`);
  }
  checkAudioSize(name, frames, fmt.channels, fmt.sampleRate, limits); // before allocating anything
  const channels: Float32Array[] = [];
  for (let c = 0; c < fmt.channels; c++) {
    channels.push(decodeChannel(view, dataPos + c * fmt.bytesPerSample, fmt.blockAlign, frames, fmt));
  }
  return {
    sampleRate: fmt.sampleRate,
    channels,
    format: fmt.codec === WAVE_FORMAT_PCM ? 'pcm' : 'float',
    bitsPerSample: fmt.bytesPerSample * 8,
  };
}

/** One channel out of the interleaved data: `start` is its first sample, `stride` the frame size. */
function decodeChannel(view: DataView, start: number, stride: number, frames: number, fmt: FmtChunk): Float32Array {
  const out = new Float32Array(frames);
  let p = start;
  if (fmt.codec === WAVE_FORMAT_IEEE_FLOAT) {
    if (fmt.bytesPerSample === 4) {
      for (let i = 0; i < frames; i++, p += stride) out[i] = view.getFloat32(p, true);
    } else {
      for (let i = 0; i < frames; i++, p += stride) out[i] = view.getFloat64(p, true);
    }
    return out;
  }
  switch (fmt.bytesPerSample) {
    case 1:
      for (let i = 0; i < frames; i++, p += stride) out[i] = (view.getUint8(p) - 128) / 128;
      break;
    case 2:
      for (let i = 0; i < frames; i++, p += stride) out[i] = view.getInt16(p, true) / 32768;
      break;
    case 3:
      for (let i = 0; i < frames; i++, p += stride) {
        out[i] = (view.getUint16(p, true) + view.getInt8(p + 2) * 65536) / 8388608;
      }
      break;
    default:
      for (let i = 0; i < frames; i++, p += stride) out[i] = view.getInt32(p, true) / 2147483648;
  }
  return out;
}

/**
 * Encode float samples (one array, or one per channel) as a WAV file.
 *
 * 's16' matches what soundfile/libsndfile writes for PCM_16 (the original Jukebox saves its
 * outputs that way): clamp to [-1, 1], multiply by 32767 in float32, round half to even
 * (lrintf). So 1.0 -> 32767, -1.0 -> -32767, and NaN becomes 0.
 * 'f32' writes WAVE_FORMAT_IEEE_FLOAT (fmt chunk of 18 bytes with cbSize 0, plus the 'fact'
 * chunk the spec requires for non-PCM data) and stores the values unchanged, never clamped.
 */
export function encodeWav(samples: Float32Array | Float32Array[], sampleRate: number, format: WavEncoding): Buffer {
  const chans = Array.isArray(samples) ? samples : [samples];
  if (chans.length === 0 || chans.length > MAX_CHANNELS) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `encodeWav needs 1 to ${MAX_CHANNELS} channels, got ${chans.length}`);
  }
  const frames = chans[0].length;
  if (chans.some((c) => c.length !== frames)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `encodeWav channels differ in length: ${chans.map((c) => c.length).join(', ')}`);
  }
  if (!Number.isInteger(sampleRate) || sampleRate <= 0 || sampleRate > MAX_SAMPLE_RATE) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `encodeWav sample rate must be a positive integer, got ${sampleRate}`);
  }
  if (format !== 's16' && format !== 'f32') {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `encodeWav format must be 's16' or 'f32', got ${String(format)}`);
  }
  const isFloat = format === 'f32';
  const bytesPerSample = isFloat ? 4 : 2;
  const blockAlign = chans.length * bytesPerSample;
  const dataSize = frames * blockAlign;
  const fmtSize = isFloat ? 18 : 16;
  const factSize = isFloat ? 12 : 0;
  const headerSize = 12 + 8 + fmtSize + factSize + 8;
  if (headerSize + dataSize > 0xffffffff) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `encodeWav: ${dataSize} bytes of audio do not fit in a 4 GiB WAV file`);
  }

  const out = Buffer.allocUnsafe(headerSize + dataSize);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.write('RIFF', 0, 'latin1');
  view.setUint32(4, headerSize + dataSize - 8, true);
  out.write('WAVEfmt ', 8, 'latin1');
  view.setUint32(16, fmtSize, true);
  view.setUint16(20, isFloat ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM, true);
  view.setUint16(22, chans.length, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, bytesPerSample * 8, true);
  let pos = 36;
  if (isFloat) {
    view.setUint16(pos, 0, true); // cbSize
    out.write('fact', pos + 2, 'latin1');
    view.setUint32(pos + 6, 4, true);
    view.setUint32(pos + 10, frames, true);
    pos += 14;
  }
  out.write('data', pos, 'latin1');
  view.setUint32(pos + 4, dataSize, true);
  pos += 8;

  for (let c = 0; c < chans.length; c++) {
    const src = chans[c];
    let p = pos + c * bytesPerSample;
    if (isFloat) {
      for (let i = 0; i < frames; i++, p += blockAlign) view.setFloat32(p, src[i], true);
    } else {
      for (let i = 0; i < frames; i++, p += blockAlign) view.setInt16(p, toInt16(src[i]), true);
    }
  }
  return out;
}

// Adding and subtracting 1.5 * 2^52 rounds a double to an integer half-to-even (the FPU's
// default mode, which lrintf uses) for any |v| < 2^51.
const ROUND_MAGIC = 6755399441055744;

function toInt16(x: number): number {
  // `x > 1` / `x < -1` are false for NaN, so NaN falls through and becomes 0 below.
  const clamped = x > 1 ? 1 : x < -1 ? -1 : x;
  const v = Math.fround(clamped * 32767); // libsndfile scales in float32
  return v === v ? v + ROUND_MAGIC - ROUND_MAGIC : 0;
}
