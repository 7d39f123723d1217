/**
 * The page's audio elements in one place: only one plays at a time, and keyboard shortcuts
 * act on the one played last.
 */
const all = new Set<HTMLAudioElement>();
let active: HTMLAudioElement | null = null;

function onPlay(this: HTMLAudioElement) {
  active = this;
  for (const a of all) if (a !== this && !a.paused) a.pause();
}

export function register(a: HTMLAudioElement): () => void {
  all.add(a);
  a.addEventListener('play', onPlay);
  return () => {
    a.removeEventListener('play', onPlay);
    all.delete(a);
    if (active === a) active = null;
  };
}

/** Makes a the one the keys act on (it was seeked by a click, without playing). */
export function activate(a: HTMLAudioElement): void {
  if (all.has(a)) active = a;
}

/** The element played or seeked last, if still on the page; else the detail view's lowest level (its best sound). */
export function current(): HTMLAudioElement | null {
  if (active && all.has(active)) return active;
  const inDetail = document.querySelectorAll<HTMLAudioElement>('[data-testid="sample-detail"] audio');
  return inDetail[inDetail.length - 1] ?? null;
}

export function seekBy(a: HTMLAudioElement, seconds: number): void {
  const d = Number.isFinite(a.duration) ? a.duration : Infinity;
  a.currentTime = Math.max(0, Math.min(d, a.currentTime + seconds));
}

export function toggle(a: HTMLAudioElement): void {
  if (a.paused) void a.play().catch(() => undefined);
  else a.pause();
}

/** Where a click fell across the element it was heard on, 0..1 (for click-to-seek). */
export function fractionAt(e: MouseEvent): number {
  const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
  return r.width > 0 ? Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) : 0;
}

/** The element's own duration once known, else the catalogue's. */
export function durationOf(a: HTMLAudioElement | null | undefined, fallback: number): number {
  const d = a?.duration;
  return d !== undefined && Number.isFinite(d) && d > 0 ? d : fallback;
}
