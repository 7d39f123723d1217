/**
 * One level of a sample: its audio, the waveform drawn from the catalogue's peaks, the
 * spectrogram image under it, and a playhead across both that follows the audio; a click
 * on either seeks there.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LevelEntry } from '../catalog-types.js';
import { clock } from './format.js';
import { register } from './players.js';

export interface LevelPlayerProps {
  level: LevelEntry;
  /** Suffix of the data-testid names: the level number in the detail view, "a"/"b" in the comparison. */
  tid: string;
  /** Called as the audio's time changes (while playing, and on seeks). */
  onTime?: (seconds: number, audio: HTMLAudioElement) => void;
  audioRef?: (a: HTMLAudioElement | null) => void;
  showSpectrogram?: boolean;
}

export function LevelPlayer({ level, tid, onTime, audioRef, showSpectrogram = true }: LevelPlayerProps) {
  const audio = useRef<HTMLAudioElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [time, setTime] = useState(0);
  const [playing, setPlaying] = useState(false);
  const onTimeRef = useRef(onTime);
  onTimeRef.current = onTime;

  const duration = () => {
    const d = audio.current?.duration;
    return d && Number.isFinite(d) ? d : level.duration;
  };

  // Time: every animation frame while playing, and on seeks.
  useEffect(() => {
    const a = audio.current!;
    audioRef?.(a);
    const unregister = register(a);
    let frame = 0;
    const tick = () => {
      setTime(a.currentTime);
      onTimeRef.current?.(a.currentTime, a);
      if (!a.paused) frame = requestAnimationFrame(tick);
    };
    const play = () => {
      setPlaying(true);
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(tick);
    };
    const stop = () => {
      setPlaying(false);
      tick();
    };
    a.addEventListener('play', play);
    a.addEventListener('pause', stop);
    a.addEventListener('ended', stop);
    a.addEventListener('seeked', tick);
    a.addEventListener('timeupdate', tick);
    return () => {
      cancelAnimationFrame(frame);
      a.removeEventListener('play', play);
      a.removeEventListener('pause', stop);
      a.removeEventListener('ended', stop);
      a.removeEventListener('seeked', tick);
      a.removeEventListener('timeupdate', tick);
      unregister();
      audioRef?.(null);
    };
  }, [level.audioUrl]);

  // Waveform: redrawn when the element's size changes.
  useEffect(() => {
    const c = canvas.current!;
    const draw = () => {
      const w = Math.max(1, Math.round(c.clientWidth * devicePixelRatio));
      const h = Math.max(1, Math.round(c.clientHeight * devicePixelRatio));
      c.width = w;
      c.height = h;
      const g = c.getContext('2d');
      if (!g) return;
      g.clearRect(0, 0, w, h);
      const { min, max } = level.peaks;
      const n = min.length;
      g.fillStyle = getComputedStyle(c).color || '#8fb3ff';
      for (let x = 0; x < w; x++) {
        const i = Math.min(n - 1, Math.floor((x / w) * n));
        const y0 = ((1 - max[i]) / 2) * h;
        const y1 = ((1 - min[i]) / 2) * h;
        g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
      }
    };
    draw();
    const ro = new ResizeObserver(draw);
    ro.observe(c);
    return () => ro.disconnect();
  }, [level.peaks]);

  const seek = (e: MouseEvent) => {
    const el = e.currentTarget as HTMLElement;
    const r = el.getBoundingClientRect();
    const f = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
    const a = audio.current!;
    a.currentTime = f * duration();
    setTime(a.currentTime);
    onTime?.(a.currentTime, a);
  };

  const pos = `${Math.max(0, Math.min(100, (time / duration()) * 100))}%`;
  return (
    <div class={`level${playing ? ' playing' : ''}`} data-testid={`level-${tid}`}>
      <div class="level-head">
        <audio ref={audio} controls preload="metadata" src={level.audioUrl} data-testid={`audio-${tid}`} />
        <span class="time">
          {clock(time)} / {clock(duration())}
        </span>
      </div>
      <div class="track">
        <div class="waveform" data-testid={`waveform-${tid}`} onClick={seek} title="click to seek">
          <canvas ref={canvas} />
        </div>
        {showSpectrogram && (
          <img class="spectrogram" src={level.spectrogramUrl} alt={`spectrogram of ${level.label}`} data-testid={`spectrogram-${tid}`} onClick={seek} draggable={false} />
        )}
        <div class="playhead" data-testid={`playhead-${tid}`} style={{ left: pos }} />
      </div>
    </div>
  );
}
