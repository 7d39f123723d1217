/**
 * The lyrics with the word the alignment points at highlighted as the sample plays (a click
 * on a word jumps to where it is first sung), and the alignment heatmap (time across, lyrics
 * down) with the same playhead and click-to-seek as the players.
 */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { AlignmentEntry } from '../catalog-types.js';
import { fractionAt } from './players.js';

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

/** Per word, the first time (s) the alignment focuses on it, or -1. */
function firstTimes(ws: Word[], a: AlignmentEntry): number[] {
  const out = ws.map(() => -1);
  a.focus.forEach((f, t) => {
    const w = wordAt(ws, f);
    if (w >= 0 && out[w] < 0) out[w] = t / a.tokensPerSecond;
  });
  return out;
}

export interface LyricsProps {
  /** The sample's lyrics, shown as they are when there is no alignment. */
  lyrics: string;
  alignment: AlignmentEntry | null;
  /** The time of the level playing (or played last), s; 0 before anything played. */
  time: number;
  onSeek: (seconds: number) => void;
}

export function Lyrics({ lyrics, alignment, time, onSeek }: LyricsProps) {
  const text = alignment?.text ?? lyrics;
  const ws = useMemo(() => words(text), [text]);
  const starts = useMemo(() => (alignment ? firstTimes(ws, alignment) : []), [ws, alignment]);
  const box = useRef<HTMLDivElement>(null);
  let current = -1;
  if (alignment && time > 0 && alignment.focus.length > 0) {
    const t = Math.min(alignment.focus.length - 1, Math.floor(time * alignment.tokensPerSecond));
    current = wordAt(ws, alignment.focus[t] ?? -1);
  }

  // Keep the current word in view inside the lyrics box, without moving the page.
  useEffect(() => {
    const b = box.current;
    const el = b?.querySelector('.current') as HTMLElement | null;
    if (!b || !el) return;
    const br = b.getBoundingClientRect();
    const er = el.getBoundingClientRect();
    if (er.top < br.top + 4 || er.bottom > br.bottom - 4) {
      b.scrollTo({ top: Math.max(0, er.top - br.top + b.scrollTop - b.clientHeight / 3), behavior: 'smooth' });
    }
  }, [current]);

  const parts: preact.ComponentChildren[] = [];
  let at = 0;
  ws.forEach((w, i) => {
    if (w.start > at) parts.push(text.slice(at, w.start));
    const t = starts[i] ?? -1;
    parts.push(
      <span
        data-testid="lyric-word"
        class={`word${i === current ? ' current' : ''}${t >= 0 ? ' sung' : ''}`}
        aria-current={i === current ? 'true' : undefined}
        title={t >= 0 ? `sung from ${t.toFixed(1)} s: click to play from here` : undefined}
        onClick={t >= 0 ? () => onSeek(t) : undefined}
      >
        {text.slice(w.start, w.end)}
      </span>,
    );
    at = w.end;
  });
  if (at < text.length) parts.push(text.slice(at));

  return (
    <section class="lyrics-section" aria-label="lyrics">
      <h3>Lyrics</h3>
      <div class="lyrics" data-testid="lyrics" ref={box}>
        {parts}
      </div>
      {!alignment && <p class="muted small">No alignment (the model has no alignment layer).</p>}
    </section>
  );
}

export interface HeatmapProps {
  alignment: AlignmentEntry;
  time: number;
  duration: number;
  onSeek: (seconds: number) => void;
}

/** Which lyrics the model attended to when: time across (like the players above), lyrics down. */
export function AlignmentHeatmap({ alignment, time, duration, onSeek }: HeatmapProps) {
  const seek = (e: MouseEvent) => onSeek(fractionAt(e) * duration);
  return (
    <section class="heatmap-section">
      <div class="level-title">
        <h3>Lyrics alignment</h3>
        <span class="muted small">time across, lyrics from the top down; click to seek</span>
      </div>
      <div class="heatmap-wrap">
        <img class="heatmap" src={alignment.heatmapUrl} alt="lyrics alignment heatmap" data-testid="heatmap" onClick={seek} draggable={false} />
        <div class="playhead" data-testid="heatmap-playhead" style={{ left: `${Math.max(0, Math.min(100, (time / duration) * 100))}%` }} />
      </div>
    </section>
  );
}
