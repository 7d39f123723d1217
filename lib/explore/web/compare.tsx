/**
 * A/B comparison: two samples side by side (their lowest level), and a switch that moves
 * playback from one to the other at the same moment, the way one compares mixes.
 */
import { useRef } from 'preact/hooks';
import type { SampleEntry } from '../catalog-types.js';
import { clock, settingsSummary, title } from './format.js';
import { LevelPlayer } from './level-player.js';

export function useCompareSwitch() {
  const audios = useRef<(HTMLAudioElement | null)[]>([null, null]);
  const last = useRef(0);
  const doSwitch = () => {
    const [a, b] = audios.current;
    if (!a || !b) return;
    const from = !a.paused ? 0 : !b.paused ? 1 : last.current;
    const src = from === 0 ? a : b;
    const dst = from === 0 ? b : a;
    const t = src.currentTime;
    src.pause();
    const d = Number.isFinite(dst.duration) ? dst.duration : Infinity;
    dst.currentTime = Math.min(t, d);
    void dst.play().catch(() => undefined);
    last.current = from === 0 ? 1 : 0;
  };
  return { audios, last, doSwitch };
}

export function Compare({ a, b, sw, onClose }: { a: SampleEntry; b: SampleEntry; sw: ReturnType<typeof useCompareSwitch>; onClose: () => void }) {
  // Both waveforms on one time scale, so the same moment is at the same place in both.
  const span = Math.max(a.levels[a.levels.length - 1]?.duration ?? 0, b.levels[b.levels.length - 1]?.duration ?? 0);
  const side = (s: SampleEntry, i: 0 | 1) => {
    const level = s.levels[s.levels.length - 1];
    return (
      <div class="compare-side">
        <div class="compare-label">{i === 0 ? 'A' : 'B'}</div>
        <strong>{title(s)}</strong>
        <div class="muted compare-meta" title={`${s.model} · ${settingsSummary(s)}`}>
          {level.label} level · {clock(s.duration)} · seed {s.seed} · {s.model} · {settingsSummary(s)}
        </div>
        <LevelPlayer
          level={level}
          tid={i === 0 ? 'a' : 'b'}
          audioRef={(el) => (sw.audios.current[i] = el)}
          onTime={(_, el) => !el.paused && (sw.last.current = i)}
          showSpectrogram={false}
          span={span}
        />
      </div>
    );
  };
  return (
    <section class="compare" data-testid="compare" aria-label="A/B comparison">
      <div class="compare-head">
        <h2>A/B</h2>
        <span class="muted small">same moment in the other one: switch, or press x · Esc closes</span>
        <button class="primary" onClick={sw.doSwitch} data-testid="compare-switch" title="switch playback to the other sample at the same time (key x)">
          Switch A ⇄ B
        </button>
        <button onClick={onClose} data-testid="compare-close" aria-label="close the comparison">
          Close
        </button>
      </div>
      <div class="compare-grid">
        {side(a, 0)}
        {side(b, 1)}
      </div>
    </section>
  );
}
