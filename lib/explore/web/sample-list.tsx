/** The list of samples: filter, sort, select, and mark two for A/B comparison. */
import type { ComponentChildren } from 'preact';
import type { SampleEntry } from '../catalog-types.js';
import { clock, excerpt, settingsSummary, SORTS, title, when, type SortKey } from './format.js';

export interface SampleListProps {
  shown: SampleEntry[];
  total: number;
  selected: string | null;
  filter: string;
  sort: SortKey;
  abA: string | null;
  abB: string | null;
  fresh: Set<string>;
  onFilter: (f: string) => void;
  onSort: (s: SortKey) => void;
  onSelect: (id: string) => void;
  onAB: (slot: 'a' | 'b', id: string) => void;
  /** Shown above the list (the "own audio" form on a live server). */
  extra?: ComponentChildren;
}

export function SampleList(p: SampleListProps) {
  return (
    <nav class="list" aria-label="samples">
      <div class="list-tools">
        <label class="grow">
          <span class="sr-only">Filter</span>
          <input type="search" placeholder="Filter: artist, genre, lyrics, model, seed" value={p.filter} onInput={(e) => p.onFilter((e.target as HTMLInputElement).value)} data-testid="filter" />
        </label>
        <label>
          <span class="sr-only">Sort</span>
          <select value={p.sort} onChange={(e) => p.onSort((e.target as HTMLSelectElement).value as SortKey)} data-testid="sort">
            {SORTS.map(([k, label]) => (
              <option value={k}>{label}</option>
            ))}
          </select>
        </label>
      </div>
      {p.extra}
      <div class="count muted" data-testid="sample-count">
        {p.shown.length === p.total ? `${p.total} sample${p.total === 1 ? '' : 's'}` : `${p.shown.length} of ${p.total} samples`}
      </div>
      <ul role="listbox" aria-label="samples">
        {p.shown.map((s) => (
          <li
            key={s.id}
            role="option"
            aria-selected={s.id === p.selected ? 'true' : 'false'}
            class={`row${s.id === p.selected ? ' selected' : ''}`}
            data-testid="sample-row"
            data-sample-id={s.id}
            tabIndex={0}
            onClick={() => p.onSelect(s.id)}
            onKeyDown={(e) => e.key === 'Enter' && p.onSelect(s.id)}
          >
            <div class="row-top">
              <strong>{title(s)}</strong>
              {p.fresh.has(s.id) && <span class="badge new">new</span>}
              {s.parent && <span class="badge">{s.parent.action === 'continue' ? 'continued' : 'upsampled'}</span>}
              <span class="ab">
                <button class={p.abA === s.id ? 'on' : ''} aria-pressed={p.abA === s.id} title="compare as A" data-testid="ab-a" onClick={(e) => (e.stopPropagation(), p.onAB('a', s.id))}>
                  A
                </button>
                <button class={p.abB === s.id ? 'on' : ''} aria-pressed={p.abB === s.id} title="compare as B" data-testid="ab-b" onClick={(e) => (e.stopPropagation(), p.onAB('b', s.id))}>
                  B
                </button>
              </span>
            </div>
            {s.lyrics && <div class="row-lyrics">“{excerpt(s.lyrics)}”</div>}
            <div class="row-meta muted">
              {clock(s.duration)} · seed {s.seed} · {s.model} · {settingsSummary(s)}
              {s.settings.samples > 1 ? ` · #${s.index}` : ''} · {when(s.createdAt)}
            </div>
          </li>
        ))}
      </ul>
    </nav>
  );
}
