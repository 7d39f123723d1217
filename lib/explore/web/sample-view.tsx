/**
 * One sample in full: its metadata and settings, a player per level (top first), downloads,
 * the lyrics with their alignment, and on a live server the continue / upsample actions.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobRequest, SampleEntry } from '../catalog-types.js';
import { clock, settingsSummary, temperature, title, when } from './format.js';
import { LevelPlayer } from './level-player.js';
import { Lyrics } from './lyrics.js';

export interface SampleViewProps {
  sample: SampleEntry;
  live: boolean;
  parentTitle: string | null;
  onSelect: (id: string) => void;
  onJob: (req: JobRequest) => void;
}

export function SampleView({ sample: s, live, parentTitle, onSelect, onJob }: SampleViewProps) {
  const [time, setTime] = useState(0);
  const lastAudio = useRef<HTMLAudioElement | null>(null);
  const audios = useRef(new Map<number, HTMLAudioElement>());
  useEffect(() => {
    setTime(0);
    lastAudio.current = null;
  }, [s.id]);

  const onTime = (t: number, a: HTMLAudioElement) => {
    lastAudio.current = a;
    setTime(t);
  };
  const seekTo = (t: number) => {
    const a = lastAudio.current ?? audios.current.get(s.levels[s.levels.length - 1].level) ?? null;
    if (!a) return;
    a.currentTime = t;
    lastAudio.current = a;
    setTime(t);
  };

  return (
    <article class="detail" data-testid="sample-detail" data-sample-id={s.id}>
      <header class="detail-head">
        <h2>{title(s)}</h2>
        <dl class="meta">
          <dt>Length</dt>
          <dd>{clock(s.duration)}</dd>
          <dt>Seed</dt>
          <dd>{s.seed}</dd>
          <dt>Model</dt>
          <dd>{s.model}</dd>
          <dt>Settings</dt>
          <dd>
            temperature {temperature(s.settings.temperature)}, top-k {s.settings.topK || 'off'}, top-p {s.settings.topP || 'off'}, sampled levels {s.settings.levels.join(', ')}, window hops{' '}
            {s.settings.hopFractions.join(' / ')}, song length {s.settings.totalSeconds.toFixed(1)} s{s.settings.primedSeconds > 0 ? `, primed with ${s.settings.primedSeconds.toFixed(1)} s` : ''}
          </dd>
          <dt>Folder</dt>
          <dd>
            <code>{s.runPath}</code>
            {s.settings.samples > 1 ? ` (sample ${s.index} of ${s.settings.samples})` : ''} · {when(s.createdAt)}
          </dd>
          {s.parent && (
            <>
              <dt>From</dt>
              <dd>
                {s.parent.action === 'continue' ? `continued at ${s.parent.fromSeconds.toFixed(1)} s from ` : 'upsampled from '}
                <button class="link" onClick={() => onSelect(s.parent!.sampleId)}>
                  {parentTitle ?? s.parent.sampleId}
                </button>
              </dd>
            </>
          )}
        </dl>
      </header>

      {s.levels.map((l) => (
        <section class="level-section" key={`${s.id}-${l.level}`}>
          <div class="level-title">
            <h3>{l.label}</h3>
            <span class="muted">level {l.level}</span>
            <span class="downloads">
              <a href={l.audioUrl} download data-testid={`download-wav-${l.level}`}>
                WAV
              </a>
              {s.codes.some((c) => c.level === l.level) && (
                <a href={s.codes.find((c) => c.level === l.level)!.url} download data-testid={`download-codes-${l.level}`}>
                  codes
                </a>
              )}
            </span>
          </div>
          <LevelPlayer level={l} tid={String(l.level)} onTime={onTime} audioRef={(a) => (a ? audios.current.set(l.level, a) : audios.current.delete(l.level))} />
        </section>
      ))}
      {s.codes.filter((c) => !s.levels.some((l) => l.level === c.level)).length > 0 && (
        <p class="muted">
          Codes without audio:{' '}
          {s.codes
            .filter((c) => !s.levels.some((l) => l.level === c.level))
            .map((c) => (
              <a href={c.url} download data-testid={`download-codes-${c.level}`}>
                level {c.level}{' '}
              </a>
            ))}
        </p>
      )}

      {(s.lyrics || s.alignment) && <Lyrics lyrics={s.lyrics ?? ''} alignment={s.alignment} time={time} duration={s.duration} onSeek={seekTo} />}

      {live && <Actions sample={s} time={time} onJob={onJob} />}
      <p class="muted summary">{settingsSummary(s)}</p>
    </article>
  );
}

/** Continue from a time (default: where playback is) to a length; upsample. */
function Actions({ sample: s, time, onJob }: { sample: SampleEntry; time: number; onJob: (req: JobRequest) => void }) {
  const [from, setFrom] = useState<string | null>(null);
  const [total, setTotal] = useState<string | null>(null);
  useEffect(() => {
    setFrom(null);
    setTotal(null);
  }, [s.id]);
  // Where playback is (to the tenth of a second), else the middle of the sample.
  const fromDefault = (Math.round((time >= 0.1 ? time : s.duration / 2) * 10) / 10).toFixed(1);
  const totalDefault = String(Math.round(s.duration + 10));
  const fromValue = from ?? fromDefault;
  const totalValue = total ?? totalDefault;
  const submit = (e: Event) => {
    e.preventDefault();
    onJob({ sampleId: s.id, action: 'continue', fromSeconds: Number(fromValue), seconds: Number(totalValue) });
  };
  return (
    <section class="actions">
      <h3>Make more from this sample</h3>
      <form class="continue" onSubmit={submit}>
        <label>
          Continue from{' '}
          <input type="number" min={0.1} step={0.1} max={s.duration} value={fromValue} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} data-testid="continue-from" /> s
        </label>
        <label>
          to a length of <input type="number" min={1} step={1} value={totalValue} onInput={(e) => setTotal((e.target as HTMLInputElement).value)} data-testid="continue-seconds" /> s
        </label>
        <button type="submit" class="primary" data-testid="continue">
          Continue
        </button>
      </form>
      {s.canUpsample && (
        <p>
          <button onClick={() => onJob({ sampleId: s.id, action: 'upsample', fromSeconds: 0 })} data-testid="upsample">
            Upsample
          </button>{' '}
          <span class="muted">sample the levels below level {Math.min(...s.settings.levels)} from its codes</span>
        </p>
      )}
    </section>
  );
}
