/**
 * Fixture files: the copies in test/fixtures (so a fresh clone passes without ../shared),
 * and helpers to read the raw little-endian arrays.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = join(repoRoot, 'test', 'fixtures');
export const sharedFixturesDir = join(repoRoot, '..', 'shared', 'fixtures', 'public');
export const hasShared = existsSync(join(sharedFixturesDir, 'manifest.json'));

export function fixture(rel: string): string {
  return join(fixturesDir, rel);
}

export function readF32(rel: string): Float32Array {
  const b = readFileSync(fixture(rel));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function readI32(rel: string): Int32Array {
  const b = readFileSync(fixture(rel));
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export interface FixtureManifest {
  vqvae: { hparams: Record<string, unknown>; hop_lengths: number[]; quantisation: { min_gap: number }[] };
  files: Record<string, { sha256: string; shape?: number[] }>;
}

export function manifest(): FixtureManifest {
  return JSON.parse(readFileSync(fixture('manifest.json'), 'utf8')) as FixtureManifest;
}
