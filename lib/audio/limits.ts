/**
 * How much work one audio file may ask of us. A file is a few bytes of header that declare
 * how much audio follows; a hostile or corrupt one can declare (or, compressed, decode to)
 * far more than it holds or than anything real needs: a 1 Hz WAV upsampled to 44.1 kHz asks
 * for 44,100 output samples per input byte, a 2 KB FLAC of constant frames decodes to
 * 40 million samples. Every reader checks what it is asked for against these bounds before
 * it allocates or loops, and refuses with ERR_AUDIO_FORMAT, naming the file and the limit.
 */
import { JukeboxError } from '../errors.js';

/**
 * Below this no audio format is used for sound (telephony's 8 kHz is the lowest in common
 * use; some voice codecs go to 4 kHz). A header declaring 1 or 2 Hz is corrupt, and
 * resampling it to the model's rate would multiply its length by tens of thousands.
 */
export const MIN_SAMPLE_RATE = 1000;

/** Beyond this nothing real exists (DSD64 as PCM is 2.8 MHz); a header claiming more is corrupt. */
export const MAX_SAMPLE_RATE = 10_000_000;

/** WAV allows 65535; real files stop at a few hundred (ambisonics, MADI multitracks). */
export const MAX_CHANNELS = 4096;

/**
 * The most samples (frames times channels) one file may decode to, and the most one load
 * may resample to: an hour of mono at 192 kHz, 2.6 GiB as float32. An hour-long stereo
 * album at 48 kHz (346 million) or 96 kHz (exactly the limit) fits; a file of a few KB that
 * claims or decompresses to more is refused instead of exhausting memory.
 */
export const MAX_DECODED_SAMPLES = 3600 * 192_000;

const MAX_DECODED_SAMPLES_LABEL = `${String(MAX_DECODED_SAMPLES).replace(/\B(?=(\d{3})+$)/g, ',')} samples (MAX_DECODED_SAMPLES: one hour of 192 kHz mono, 2.6 GiB as float32)`;

/** Per-load limits: the caller's maxSeconds (if any) and the absolute sample budget. */
export interface AudioLimits {
  /** Refuse audio whose decoded duration exceeds this many seconds. */
  maxSeconds?: number;
  /** Refuse audio that decodes to more than this many samples over all channels. */
  maxSamples: number;
}

export function audioLimits(maxSeconds: number | undefined): AudioLimits {
  if (maxSeconds !== undefined && !(typeof maxSeconds === 'number' && maxSeconds > 0 && Number.isFinite(maxSeconds))) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `loadAudio: maxSeconds must be a positive number of seconds, got ${String(maxSeconds)}`);
  }
  return { maxSeconds, maxSamples: MAX_DECODED_SAMPLES };
}

/** The sample limit in words, naming MAX_DECODED_SAMPLES when it is that one. */
export function sampleLimitLabel(limits: AudioLimits): string {
  return limits.maxSamples === MAX_DECODED_SAMPLES ? MAX_DECODED_SAMPLES_LABEL : `${limits.maxSamples} samples`;
}

function seconds(s: number): string {
  return s >= 100 ? `${Math.round(s)} s` : `${Number(s.toPrecision(3))} s`;
}

/**
 * Throw ERR_AUDIO_FORMAT when `frames` of `channels` at `sampleRate` break a limit.
 * `partial` says the count is what a decoder has produced so far (the file holds at least
 * that much), rather than the file's whole length.
 */
export function checkAudioSize(name: string, frames: number, channels: number, sampleRate: number, limits: AudioLimits, partial = false): void {
  const atLeast = partial ? 'at least ' : '';
  if (limits.maxSeconds !== undefined && frames > limits.maxSeconds * sampleRate) {
    throw new JukeboxError(
      'ERR_AUDIO_FORMAT',
      `${name} is ${atLeast}${seconds(frames / sampleRate)} long (${frames} frames at ${sampleRate} Hz), more than the ${limits.maxSeconds} s allowed here`,
    );
  }
  if (frames * channels > limits.maxSamples) {
    throw new JukeboxError(
      'ERR_AUDIO_FORMAT',
      `${name} decodes to ${atLeast}${frames * channels} samples (${frames} frames of ${channels} channel(s)), more than the limit of ${sampleLimitLabel(limits)}`,
    );
  }
}
