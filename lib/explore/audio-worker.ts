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
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { loadAudio, type LoadAudioOptions } from '../audio/decode.js';
import { MAX_SAMPLE_RATE, MIN_SAMPLE_RATE } from '../audio/limits.js';
import { probeAudioHeader, type HeaderFacts } from '../audio/probe.js';
import { JukeboxError } from '../errors.js';
import { DECODE_REQUEST, type DecodeReply, type DecodeRequest } from './audio-decoder-types.js';

/** Rate asked of the decoder when the header does not say (MP3): the common one, and the models'. */
const FALLBACK_RATE = 44100;

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
    facts = probeAudioHeader(fd);
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
