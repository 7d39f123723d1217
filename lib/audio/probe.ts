/**
 * What an audio file's first bytes say, read without decoding: its container, and its sample
 * rate and length where the header holds them (WAV, FLAC; Ogg Vorbis and Opus the rate;
 * MP3 nothing). Callers bound work before decoding with it (the explorer refuses an upload
 * that declares 1 Hz or hours of audio at once) and pick a decode rate with no resampling.
 * Every read is bounded; a header that lies only makes the answer wrong, never the walk long.
 */
import { fstatSync, readSync } from 'node:fs';

export type AudioContainer = 'wav' | 'flac' | 'ogg' | 'opus' | 'mp3';

export interface HeaderFacts {
  container?: AudioContainer;
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
export function probeAudioHeader(fd: number): HeaderFacts {
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
