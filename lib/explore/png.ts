/**
 * A minimal PNG writer (8-bit RGB, no interlace) for the explorer's spectrograms and
 * heatmaps: zlib from Node, the zip reader's CRC-32 (zlib.crc32 is not in every Node 20).
 */
import { deflateSync } from 'node:zlib';
import { crc32 } from '../checkpoint/zip.js';

export { crc32 };

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** rgb: width * height * 3 bytes, rows top to bottom. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 1 << 16 || height > 1 << 16) {
    throw new Error(`PNG size must be whole pixels between 1 and 65536, got ${width} x ${height}`);
  }
  if (rgb.length !== width * height * 3) throw new Error(`PNG data must hold ${width * height * 3} bytes (RGB), got ${rgb.length}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bits per channel
  ihdr[9] = 2; // truecolour
  // compression, filter method, interlace: 0
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    // Filter "sub" (1): neighbouring pixels of an image like these are alike, so it deflates better.
    const o = y * (stride + 1);
    raw[o] = 1;
    const row = y * stride;
    for (let x = 0; x < stride; x++) raw[o + 1 + x] = (rgb[row + x] - (x >= 3 ? rgb[row + x - 3] : 0)) & 0xff;
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 6 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
