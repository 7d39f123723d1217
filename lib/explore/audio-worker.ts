/**
 * The explorer's audio decoding, run in a worker thread (lib/explore/audio-decoder.ts starts
 * one per file, with a time and memory limit): an uploaded file is decoded here, never on the
 * server's event loop, so a slow or hostile file cannot stall the other requests.
 *
 * Before decoding, the file's header is read for what bounds the work: its sample rate and,
 * where the header says, its length. A file out of bounds (a 6 KB WAV declaring 1 Hz is an
 * hour of "audio" that would take minutes and gigabytes to resample) is refused at once.
 * The decoder is asked for the file's own rate where the header gives it, so checking an
 * upload costs no resampling; a prime job asks for the model's rate.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { loadAudio, type LoadAudioOptions } from '../audio/decode.js';
import { JukeboxError } from '../errors.js';
import { DECODE_REQUEST, type DecodeReply, type DecodeRequest, type UploadContainer } from './audio-decoder-types.js';

/** Sample rates an upload may have: below 1 kHz nothing is music; above 768 kHz nothing is real. */
export const MIN_SAMPLE_RATE = 1000;
export const MAX_SAMPLE_RATE = 768_000;
/** Rate asked of the decoder when the header does not say (MP3): the common one, and the models'. */
const FALLBACK_RATE = 44100;

interface HeaderFacts {
  container?: UploadContainer;
  sampleRate?: number;
  /** Frames the header declares (WAV, FLAC), when it does. */
  frames?: number;
}

/** Reads `length` bytes at `pos` (fewer at the end of the file). */
function readAt(fd: number, pos: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const n = readSync(fd, b, 0, length, pos);
  return b.subarray(0, n);
}

/** Offset just past any ID3v2 tags at `pos`. */
function skipId3(fd: number, pos: number): number {
  for (let i = 0; i < 16; i++) {
    const h = readAt(fd, pos, 10);
    if (h.length < 10 || h.toString('latin1', 0, 3) !== 'ID3') break;
    const size = ((h[6] & 0x7f) << 21) | ((h[7] & 0x7f) << 14) | ((h[8] & 0x7f) << 7) | (h[9] & 0x7f);
    pos += 10 + size + (h[5] & 0x10 ? 10 : 0);
  }
  return pos;
}

/** WAV: the fmt chunk's rate and block size, and the data chunk's length, read chunk header by chunk header. */
function wavFacts(fd: number, fileSize: number, rf64: boolean): HeaderFacts {
  let rate: number | undefined;
  let blockAlign = 0;
  let dataSize: number | undefined;
  let ds64 = -1;
  let pos = 12;
  // A bound on the walk: a file of thousands of tiny chunks is left to the decoder.
  for (let i = 0; i < 4096 && pos + 8 <= fileSize; i++) {
    const h = readAt(fd, pos, 8);
    const id = h.toString('latin1', 0, 4);
    let size = h.readUInt32LE(4);
    if (id === 'ds64' && rf64) {
      const b = readAt(fd, pos + 8, 24);
      if (b.length === 24) ds64 = Number(b.readBigUInt64LE(8));
    } else if (id === 'fmt ') {
      const b = readAt(fd, pos + 8, 16);
      if (b.length < 16) break;
      rate = b.readUInt32LE(4);
      blockAlign = b.readUInt16LE(12);
    } else if (id === 'data') {
      if (rf64 && size === 0xffffffff && ds64 >= 0) size = ds64;
      dataSize = Math.min(size, fileSize - pos - 8);
      if (rate !== undefined) break;
    }
    pos += 8 + size + (size & 1);
  }
  return { container: 'wav', sampleRate: rate, frames: dataSize !== undefined && blockAlign > 0 ? Math.floor(dataSize / blockAlign) : undefined };
}

/** What the first bytes say: the container, and its sample rate and length where the header holds them. */
export function headerFacts(fd: number): HeaderFacts {
  const fileSize = fstatSync(fd).size;
  const head = readAt(fd, 0, 64);
  const magic = head.toString('latin1', 0, 4);
  if (magic === 'RIFF' || magic === 'RF64' || magic === 'BW64') return head.toString('latin1', 8, 12) === 'WAVE' ? wavFacts(fd, fileSize, magic !== 'RIFF') : {};
  if (magic === 'OggS' && head.length > 27) {
    const body = readAt(fd, 27 + head[26], 16);
    if (body[0] === 1 && body.toString('latin1', 1, 7) === 'vorbis' && body.length >= 16) return { container: 'ogg', sampleRate: body.readUInt32LE(12) };
    // Opus always decodes at 48 kHz, whatever rate the file says it was made from.
    if (body.toString('latin1', 0, 8) === 'OpusHead') return { container: 'opus', sampleRate: 48000 };
    return {};
  }
  const start = skipId3(fd, 0);
  const at = readAt(fd, start, 26);
  if (at.toString('latin1', 0, 4) === 'fLaC' && at.length >= 26) {
    // STREAMINFO, the first metadata block: 20 bits of rate, then 36 bits of total samples (0: unknown).
    const s = at.subarray(8);
    const rate = (s[10] << 12) | (s[11] << 4) | (s[12] >> 4);
    const total = (s[13] & 0x0f) * 2 ** 32 + s.readUInt32BE(14);
    return { container: 'flac', sampleRate: rate, frames: total > 0 ? total : undefined };
  }
  // An MPEG audio frame header (its rates are 8 to 48 kHz: nothing to check).
  if (at.length >= 4 && at[0] === 0xff && (at[1] & 0xe0) === 0xe0 && ((at[1] >> 1) & 3) !== 0) return { container: 'mp3' };
  return {};
}

function lengthText(s: number): string {
  return s >= 120 ? `${Math.round(s / 60)} minutes` : `${Math.round(s * 10) / 10} s`;
}

async function decode(r: DecodeRequest): Promise<DecodeReply> {
  const refuse = (why: string): never => {
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${r.name} ${why}`);
  };
  const fd = openSync(r.path, 'r');
  let facts: HeaderFacts;
  try {
    facts = headerFacts(fd);
  } finally {
    closeSync(fd);
  }
  const rate = facts.sampleRate;
  if (rate !== undefined && (rate < MIN_SAMPLE_RATE || rate > MAX_SAMPLE_RATE)) {
    refuse(`declares a sample rate of ${rate} Hz; audio from ${MIN_SAMPLE_RATE} Hz to ${MAX_SAMPLE_RATE / 1000} kHz is accepted`);
  }
  if (rate && facts.frames !== undefined && facts.frames / rate > r.maxSeconds) {
    refuse(`holds ${lengthText(facts.frames / rate)} of audio; at most ${lengthText(r.maxSeconds)} is accepted`);
  }
  const sampleRate = r.sampleRate ?? rate ?? FALLBACK_RATE;
  // maxSeconds: lib/audio's own bound on the decoded length (it refuses compressed audio as it
  // decodes, before resampling); the checks here and the worker's limits stand regardless.
  const opts: LoadAudioOptions = { sampleRate, maxSeconds: r.maxSeconds };
  let audio;
  try {
    audio = await loadAudio(r.path, opts);
  } catch (e) {
    const code = (e as JukeboxError).code;
    if (code !== 'ERR_AUDIO_FORMAT' && code !== 'ERR_INVALID_ARGUMENT') throw e;
    throw new JukeboxError('ERR_AUDIO_FORMAT', `${r.name} is not audio this package can read: ${(e as Error).message}`);
  }
  if (audio.sourceSampleRate < MIN_SAMPLE_RATE || audio.sourceSampleRate > MAX_SAMPLE_RATE) {
    refuse(`has a sample rate of ${audio.sourceSampleRate} Hz; audio from ${MIN_SAMPLE_RATE} Hz to ${MAX_SAMPLE_RATE / 1000} kHz is accepted`);
  }
  if (audio.durationSeconds > r.maxSeconds + 1e-6) refuse(`holds ${lengthText(audio.durationSeconds)} of audio; at most ${lengthText(r.maxSeconds)} is accepted`);
  const reply: DecodeReply = {
    ok: true,
    container: facts.container ?? null,
    durationSeconds: audio.durationSeconds,
    sourceSampleRate: audio.sourceSampleRate,
    sampleRate,
  };
  if (r.keepSeconds !== undefined) reply.samples = audio.samples.slice(0, Math.round(r.keepSeconds * sampleRate));
  return reply;
}

// Only as the worker lib/explore/audio-decoder.ts starts (not if imported anywhere else).
const request = workerData as DecodeRequest | undefined;
if (parentPort && request?.kind === DECODE_REQUEST) {
  const port = parentPort;
  const r = request;
  decode(r).then(
    (reply) => port.postMessage(reply, reply.ok && reply.samples ? [reply.samples.buffer as ArrayBuffer] : []),
    (e: unknown) => {
      const err = e as Error & { code?: string };
      // The decoder names the file by its path on disk; the user knows it by its own name.
      const message = String(err.message ?? e).split(r.path).join(r.name);
      port.postMessage({ ok: false, code: typeof err.code === 'string' ? err.code : 'ERR_AUDIO_FORMAT', message } satisfies DecodeReply);
    },
  );
}
