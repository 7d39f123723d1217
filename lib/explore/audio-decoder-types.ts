/** The messages between lib/explore/audio-decoder.ts and its worker, lib/explore/audio-worker.ts. */

/** Marks the worker's workerData, so the worker module acts only when started as one. */
export const DECODE_REQUEST = 'jukebox-explore-decode';

/** The containers an upload can be, named by the extension its copy on disk gets. */
import type { AudioContainer } from '../audio/probe.js';
export type UploadContainer = AudioContainer;

export interface DecodeRequest {
  kind: typeof DECODE_REQUEST;
  path: string;
  /** The file's name as the user knows it, for messages (never a path). */
  name: string;
  /** Rate to decode to; by default the file's own where its header says (no resampling). */
  sampleRate?: number;
  /** Longest audio accepted, in seconds. */
  maxSeconds: number;
  /** Send back the first this many seconds of samples (a prime job's prompt); none by default. */
  keepSeconds?: number;
}

export type DecodeReply =
  | {
      ok: true;
      /** From the file's first bytes; null when they did not tell (the decoder still read it). */
      container: UploadContainer | null;
      durationSeconds: number;
      sourceSampleRate: number;
      sampleRate: number;
      samples?: Float32Array;
    }
  | { ok: false; code: string; message: string };
