/**
 * The lyrics with the word the alignment points at highlighted as the sample plays, and the
 * alignment heatmap (time across, lyrics down) with the same playhead and click-to-seek.
 */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { AlignmentEntry } from '../catalog-types.js';

interface Word {
  start: number;
  end: number;
}

function words(text: string): Word[] {
  const out: Word[] = [];
  for (const m of text.matchAll(/\S+/g)) out.push({ start: m.index!, end: m.index! + m[0].length });
  return out;
}

/** The word holding character f, or the one before it when f falls between words. */
export function wordAt(ws: Word[], f: number): number {
  if (f < 0) return -1;
  let found = -1;
  for (let i = 0; i < ws.length && ws[i].start <= f; i++) found = i;
  return found;
}

export function Lyrics({ lyrics, alignment, time, duration, onSeek }: { lyrics: string; alignment: AlignmentEntry | null; time: number; duration: number; onSeek: (t: number) => void }) {
  const text = alignment?.text ?? lyrics;
  const ws = useMemo(() => words(text), [text]);
  const box = useRef<HTMLDivElement>(null);
  let current = -1;
  if (alignment && time > 0) {
    const t = Math.min(alignment.focus.length - 1, Math.floor(time * alignment.tokensPerSecond));
    current = wordAt(ws, alignment.focus[t] ?? -1);
  }

  // Keep the current word in view inside the lyrics box, without moving the page.
  useEffect(() => {
    const b = box.current;
    const el = b?.querySelector('.current') as HTMLElement | null;
    if (!b || !el) return;
    const top = el.offsetTop - b.offsetTop;
    if (top < b.scrollTop || top > b.scrollTop + b.clientHeight - el.offsetHeight) b.scrollTop = Math.max(0, top - b.clientHeight / 3);
  }, [current]);

  const parts: preact.ComponentChildren[] = [];
  let at = 0;
  ws.forEach((w, i) => {
    if (w.start > at) parts.push(text.slice(at, w.start));
    parts.push(
      <span data-testid="lyric-word" class={i === current ? 'word current' : 'word'} aria-current={i === current ? 'true' : undefined}>
        {text.slice(w.start, w.end)}
      </span>,
    );
    at = w.end;
  });
  if (at < text.length) parts.push(text.slice(at));

  const seek = (e: MouseEvent) => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    onSeek(Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) * duration);
  };

  return (
    <section class="lyrics-section">
      <h3>Lyrics</h3>
      <div class="lyrics" data-testid="lyrics" ref={box}>
        {parts}
      </div>
      {alignment ? (
        <div class="heatmap-wrap" title="lyrics alignment: time across, lyrics down; click to seek">
          <img class="heatmap" src={alignment.heatmapUrl} alt="lyrics alignment heatmap" data-testid="heatmap" onClick={seek} draggable={false} />
          <div class="playhead" data-testid="heatmap-playhead" style={{ left: `${Math.max(0, Math.min(100, (time / duration) * 100))}%` }} />
        </div>
      ) : (
        <p class="muted">No alignment (the model has no alignment layer).</p>
      )}
    </section>
  );
}
