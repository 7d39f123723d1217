/**
 * One sample in full: its metadata and settings, on a live server the continue / upsample
 * actions, a player per level (top first) with downloads, the alignment heatmap under them,
 * and the lyrics beside them (kept in view while scrolling the levels).
 */
import { useRef, useState } from 'preact/hooks';
import type { JobRequest, SampleEntry } from '../catalog-types.js';
import { clock, temperature, title, when } from './format.js';
import { LevelPlayer } from './level-player.js';
import { activate } from './players.js';
import { AlignmentHeatmap, Lyrics } from './lyrics.js';

export interface SampleViewProps {
  sample: SampleEntry;
  live: boolean;
  /** The parent sample's title when it is in the catalogue. */
  parentTitle: string | null;
  isNew: boolean;
  onSelect: (id: string) => void;
  onJob: (req: JobRequest) => void;
}

export function SampleView({ sample: s, live, parentTitle, isNew, onSelect, onJob }: SampleViewProps) {
  // The time of the level playing or played last (drives the lyrics, heatmap and "continue from").
  const [time, setTime] = useState(0);
  const lastAudio = useRef<HTMLAudioElement | null>(null);
  const audios = useRef(new Map<number, HTMLAudioElement>());

  const onTime = (t: number, a: HTMLAudioElement) => {
    lastAudio.current = a;
    setTime(t);
  };
  /** Seeks the level played last (else the lowest one) and plays it: used by the heatmap and the lyrics. */
  const seekTo = (t: number, play = false) => {
    const a = lastAudio.current ?? audios.current.get(s.levels[s.levels.length - 1]?.level ?? -1) ?? null;
    if (!a) return;
    a.currentTime = t;
    activate(a);
    lastAudio.current = a;
    setTime(t);
    if (play && a.paused) void a.play().catch(() => undefined);
  };
  const hasLyrics = !!(s.alignment || s.lyrics);
  const codesOnly = s.codes.filter((c) => !s.levels.some((l) => l.level === c.level));
  const st = s.settings;

  return (
    <article class="detail" data-testid="sample-detail" data-sample-id={s.id}>
      <header class="detail-head">
        <div class="title-row">
          <h2>{title(s)}</h2>
          {isNew && <span class="badge new">new</span>}
          <span class="grow" />
          <a class="small" href={`#sample=${encodeURIComponent(s.id)}`} title="a link to this sample">
            link
          </a>
        </div>
        <dl class="meta">
          <dt>Length</dt>
          <dd>
            {clock(s.duration)} <span class="muted">of a {clock(st.totalSeconds)} song</span>
          </dd>
          <dt>Seed</dt>
          <dd>{s.seed}</dd>
          <dt>Model</dt>
          <dd class="break">{s.model}</dd>
          <dt>Settings</dt>
          <dd>
            temperature {temperature(st.temperature)} · top-k {st.topK || 'off'} · top-p {st.topP || 'off'} · sampled levels {st.levels.join(', ')} · window hops{' '}
            {st.hopFractions.join(' / ')}
            {st.primedSeconds > 0 ? ` · primed with ${st.primedSeconds.toFixed(1)} s` : ''}
            {st.samples > 1 ? ` · sample ${s.index + 1} of ${st.samples}` : ''}
          </dd>
          <dt>Folder</dt>
          <dd class="break">
            <code>{s.runPath}</code> · {when(s.createdAt)}
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
        {live && <Actions sample={s} time={time} onJob={onJob} />}
      </header>

      <div class={`detail-body${hasLyrics ? ' with-lyrics' : ''}`}>
        <div class="levels">
          {s.levels.map((l) => {
            const codes = s.codes.find((c) => c.level === l.level);
            return (
              <section class="level-section" key={`${s.id}-${l.level}`} aria-label={`${l.label} level`}>
                <div class="level-title">
                  <h3>{l.label}</h3>
                  <span class="muted small">level {l.level}</span>
                  <span class="downloads">
                    <a href={l.audioUrl} download data-testid={`download-wav-${l.level}`} title={`download the ${l.label} level as WAV`}>
                      WAV
                    </a>
                    {codes && (
                      <a href={codes.url} download data-testid={`download-codes-${l.level}`} title={`download the ${l.label} level's codes (.npz)`}>
                        codes
                      </a>
                    )}
                  </span>
                </div>
                <LevelPlayer level={l} tid={String(l.level)} onTime={onTime} audioRef={(a) => (a ? audios.current.set(l.level, a) : audios.current.delete(l.level))} />
              </section>
            );
          })}
          {codesOnly.length > 0 && (
            <p class="muted small">
              Codes without audio:{' '}
              {codesOnly.map((c) => (
                <a href={c.url} download data-testid={`download-codes-${c.level}`} class="gap">
                  level {c.level}
                </a>
              ))}
            </p>
          )}
          {s.alignment && <AlignmentHeatmap alignment={s.alignment} time={time} duration={s.duration} onSeek={(t) => seekTo(t)} />}
        </div>
        {hasLyrics && (
          <aside class="lyrics-col">
            <Lyrics lyrics={s.lyrics ?? ''} alignment={s.alignment} time={time} onSeek={(t) => seekTo(t, true)} />
          </aside>
        )}
      </div>
    </article>
  );
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Continue from a time (default: where playback is, else the middle) to a length; upsample. */
function Actions({ sample: s, time, onJob }: { sample: SampleEntry; time: number; onJob: (req: JobRequest) => void }) {
  const [from, setFrom] = useState<string | null>(null);
  const [total, setTotal] = useState<string | null>(null);
  const fromDefault = round1(time >= 0.1 ? Math.min(time, s.duration) : s.duration / 2).toFixed(1);
  const totalDefault = String(round1(s.duration + 10));
  const fromValue = from ?? fromDefault;
  const totalValue = total ?? totalDefault;
  const submit = (e: Event) => {
    e.preventDefault();
    onJob({ sampleId: s.id, action: 'continue', fromSeconds: Number(fromValue), seconds: Number(totalValue) });
  };
  return (
    <div class="actions">
      <form class="continue" onSubmit={submit} aria-label="continue this sample">
        <label>
          Continue from{' '}
          <input type="number" min={0.1} step={0.1} max={s.duration} required value={fromValue} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} data-testid="continue-from" /> s
        </label>
        {from !== null && (
          <button type="button" class="link small" onClick={() => setFrom(null)} title="follow the playhead again">
            at the playhead
          </button>
        )}
        <label>
          for{' '}
          <input type="number" min={0.2} step={0.1} required value={totalValue} onInput={(e) => setTotal((e.target as HTMLInputElement).value)} data-testid="continue-seconds" /> s in total
        </label>
        <button type="submit" class="primary" data-testid="continue" title="keep this sample up to that time and sample on from there, into a new sample">
          Continue
        </button>
        {s.canUpsample && (
          <button type="button" onClick={() => onJob({ sampleId: s.id, action: 'upsample', fromSeconds: 0 })} data-testid="upsample" title={`sample the levels below level ${Math.min(...s.settings.levels)} from this sample's codes`}>
            Upsample
          </button>
        )}
      </form>
    </div>
  );
}
