/**
 * "Start from your own audio": upload a file (POST api/primes), then a prime job continues
 * its first seconds into a new song with the labels given here (live server only).
 */
import { useState } from 'preact/hooks';
import type { JobRequest, PrimeInfo } from '../catalog-types.js';

export function PrimeForm({ onJob }: { onJob: (req: JobRequest) => Promise<void> }) {
  const [file, setFile] = useState<File | null>(null);
  const [from, setFrom] = useState('5');
  const [seconds, setSeconds] = useState('20');
  const [artist, setArtist] = useState('');
  const [genre, setGenre] = useState('');
  const [lyrics, setLyrics] = useState('');
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) {
      setStatus('Choose an audio file first.');
      return;
    }
    setBusy(true);
    setStatus(`Uploading ${file.name}...`);
    try {
      const r = await fetch('api/primes', {
        method: 'POST',
        headers: { 'Content-Type': file.type && file.type.startsWith('audio/') ? file.type : 'application/octet-stream', 'X-Filename': encodeURIComponent(file.name) },
        body: file,
      });
      const body = (await r.json().catch(() => ({}))) as PrimeInfo & { error?: string };
      if (!r.ok) throw new Error(body.error ?? `the server answered ${r.status}`);
      setStatus(`${body.name}: ${body.duration.toFixed(1)} s of audio; job started.`);
      await onJob({ action: 'prime', prime: body.id, fromSeconds: Number(from), seconds: Number(seconds), artist: artist || undefined, genre: genre || undefined, lyrics: lyrics || undefined });
    } catch (err) {
      setStatus(`Could not use that file: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details class="prime">
      <summary>Continue your own audio…</summary>
      <form onSubmit={submit} class="prime-form">
        <label>
          Audio file <input type="file" accept="audio/*,.wav,.flac,.ogg,.opus,.mp3" onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)} data-testid="prime-file" />
        </label>
        <div class="prime-row">
          <label>
            use the first <input type="number" min={0.1} step={0.1} value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} data-testid="prime-from" /> s
          </label>
          <label>
            length <input type="number" min={1} step={1} value={seconds} onInput={(e) => setSeconds((e.target as HTMLInputElement).value)} data-testid="prime-seconds" /> s
          </label>
        </div>
        <div class="prime-row">
          <label class="grow">
            Artist <input value={artist} onInput={(e) => setArtist((e.target as HTMLInputElement).value)} data-testid="prime-artist" />
          </label>
          <label class="grow">
            Genre <input value={genre} onInput={(e) => setGenre((e.target as HTMLInputElement).value)} data-testid="prime-genre" />
          </label>
        </div>
        <label>
          Lyrics (lyric models)
          <textarea rows={3} value={lyrics} onInput={(e) => setLyrics((e.target as HTMLTextAreaElement).value)} data-testid="prime-lyrics" />
        </label>
        <button type="submit" class="primary" disabled={busy} data-testid="prime-start">
          Upload and continue
        </button>
        {status && (
          <div class="muted" role="status" data-testid="prime-status">
            {status}
          </div>
        )}
      </form>
    </details>
  );
}
