/**
 * One level of a sample: its audio, the waveform drawn from the catalogue's peaks (the part
 * already played in the accent colour), the spectrogram image under it, and a playhead
 * across both that follows the audio; a click on either seeks there, and hovering shows
 * the time under the pointer.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LevelEntry } from '../catalog-types.js';
import { clock } from './format.js';
import { activate, durationOf, fractionAt, register } from './players.js';

export interface LevelPlayerProps {
  level: LevelEntry;
  /** Suffix of the data-testid names: the level number in the detail view, "a"/"b" in the comparison. */
  tid: string;
  /** Called as the audio's time changes (while playing, and on seeks). */
  onTime?: (seconds: number, audio: HTMLAudioElement) => void;
  audioRef?: (a: HTMLAudioElement | null) => void;
  showSpectrogram?: boolean;
  /** Seconds the full width stands for (A/B: the longer of the two), when more than this level's. */
  span?: number;
}

/** Draws min/max peaks into the canvas at its displayed size, in its CSS colour. */
function drawPeaks(c: HTMLCanvasElement, peaks: LevelEntry['peaks']): void {
  const w = Math.max(1, Math.round(c.clientWidth * devicePixelRatio));
  const h = Math.max(1, Math.round(c.clientHeight * devicePixelRatio));
  c.width = w;
  c.height = h;
  const g = c.getContext('2d');
  if (!g) return;
  g.clearRect(0, 0, w, h);
  const { min, max } = peaks;
  const n = Math.min(min.length, max.length);
  if (n === 0) return;
  g.fillStyle = getComputedStyle(c).color || '#8fb3ff';
  for (let x = 0; x < w; x++) {
    // Every peak column under this pixel, so no peak is lost when the canvas is narrower.
    const i0 = Math.min(n - 1, Math.floor((x * n) / w));
    const i1 = Math.max(i0 + 1, Math.min(n, Math.floor(((x + 1) * n) / w)));
    let lo = 1;
    let hi = -1;
    for (let i = i0; i < i1; i++) {
      if (min[i] < lo) lo = min[i];
      if (max[i] > hi) hi = max[i];
    }
    if (hi < lo) continue;
    const y0 = ((1 - Math.min(1, hi)) / 2) * h;
    const y1 = ((1 - Math.max(-1, lo)) / 2) * h;
    g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
}

export function LevelPlayer({ level, tid, onTime, audioRef, showSpectrogram = true, span }: LevelPlayerProps) {
  const audio = useRef<HTMLAudioElement>(null);
  const base = useRef<HTMLCanvasElement>(null);
  const played = useRef<HTMLCanvasElement>(null);
  const [time, setTime] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [hover, setHover] = useState<number | null>(null);
  const [, setMeta] = useState(0);
  const onTimeRef = useRef(onTime);
  onTimeRef.current = onTime;
  const audioRefRef = useRef(audioRef);
  audioRefRef.current = audioRef;

  const duration = () => durationOf(audio.current, level.duration);

  // Time: every animation frame while playing, and on seeks and time updates.
  useEffect(() => {
    const a = audio.current!;
    audioRefRef.current?.(a);
    const unregister = register(a);
    let frame = 0;
    const tick = () => {
      cancelAnimationFrame(frame);
      setTime(a.currentTime);
      onTimeRef.current?.(a.currentTime, a);
      if (!a.paused && !a.ended) frame = requestAnimationFrame(tick);
    };
    const play = () => {
      setPlaying(true);
      tick();
    };
    const stop = () => {
      setPlaying(false);
      tick();
    };
    const meta = () => setMeta((n) => n + 1);
    const handlers: [string, () => void][] = [
      ['play', play],
      ['pause', stop],
      ['ended', stop],
      ['seeked', tick],
      ['timeupdate', tick],
      ['loadedmetadata', meta],
    ];
    for (const [e, h] of handlers) a.addEventListener(e, h);
    return () => {
      cancelAnimationFrame(frame);
      for (const [e, h] of handlers) a.removeEventListener(e, h);
      unregister();
      audioRefRef.current?.(null);
    };
  }, [level.audioUrl]);

  // Waveform: drawn twice (to play, played), redrawn when the element's size changes.
  useEffect(() => {
    const draw = () => {
      if (base.current) drawPeaks(base.current, level.peaks);
      if (played.current) drawPeaks(played.current, level.peaks);
    };
    draw();
    const ro = new ResizeObserver(draw);
    if (base.current) ro.observe(base.current);
    return () => ro.disconnect();
  }, [level.peaks]);

  const seek = (e: MouseEvent) => {
    const a = audio.current!;
    a.currentTime = fractionAt(e) * duration();
    activate(a);
    setTime(a.currentTime);
    onTime?.(a.currentTime, a);
  };
  const onMove = (e: MouseEvent) => setHover(fractionAt(e));

  const d = duration();
  const pct = Math.max(0, Math.min(100, (time / d) * 100));
  return (
    <div class={`level${playing ? ' playing' : ''}`} data-testid={`level-${tid}`}>
      <div class="level-head">
        <audio ref={audio} controls preload="metadata" src={level.audioUrl} data-testid={`audio-${tid}`} aria-label={`${level.label} level audio`} />
        <span class="time" aria-hidden="true">
          {clock(time)} / {clock(d)}
        </span>
      </div>
      <div
        class={`track${showSpectrogram ? '' : ' no-spec'}`}
        style={span && span > level.duration ? { width: `${(level.duration / span) * 100}%` } : undefined}
        onMouseMove={onMove}
        onMouseLeave={() => setHover(null)}
      >
        <div class="waveform" data-testid={`waveform-${tid}`} onClick={seek} title="click to seek">
          <canvas ref={base} class="wave-base" />
          <canvas ref={played} class="wave-played" style={{ clipPath: `inset(0 ${100 - pct}% 0 0)` }} />
        </div>
        {showSpectrogram && (
          <img class="spectrogram" src={level.spectrogramUrl} alt={`spectrogram of the ${level.label} level`} data-testid={`spectrogram-${tid}`} onClick={seek} draggable={false} />
        )}
        {hover !== null && (
          <div class={`hover-line${hover > 0.85 ? ' flip' : ''}`} style={{ left: `${hover * 100}%` }}>
            <span class="hover-time">{clock(hover * d)}</span>
          </div>
        )}
        <div class="playhead" data-testid={`playhead-${tid}`} style={{ left: `${pct}%` }} />
      </div>
    </div>
  );
}
