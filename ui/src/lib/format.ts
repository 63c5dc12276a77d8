// Number, duration and percentage formatting. `null` means unknown and is never shown as 0.

export const UNKNOWN = 'unknown';

/** "1 h 5 min", "42 min", "35 s", "0 s"; null → "unknown". */
export function formatDuration(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return UNKNOWN;
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s} s`;
  const totalMin = Math.round(s / 60);
  const h = Math.floor(totalMin / 60);
  const m = totalMin % 60;
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** A 0..1 ratio as a percentage with one decimal: 0.6667 → "66.7%", 1 → "100%"; null → "unknown". */
export function formatRate(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return UNKNOWN;
  return formatPercent(ratio * 100);
}

/** A value that is already a percentage (0..100): 78.5 → "78.5%". */
export function formatPercent(pct: number | null | undefined): string {
  if (pct === null || pct === undefined || !Number.isFinite(pct)) return UNKNOWN;
  const rounded = Math.round(pct * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded.toFixed(0) : rounded.toFixed(1)}%`;
}

/** Integers as plain digits (no grouping, so tests and copy/paste see "1234"); null → "unknown". */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return UNKNOWN;
  return String(Math.round(n));
}

/** Minutes, e.g. replay time: 2280 s → "38 min". */
export function formatMinutes(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return UNKNOWN;
  return `${Math.round(secs / 60)} min`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Pretty-prints JSON text; anything else is returned unchanged (always as text). */
export function prettyBody(body: string, contentType: string | null | undefined): { text: string; json: boolean } {
  const t = body.trim();
  const looksJson = (contentType ?? '').includes('json') || t.startsWith('{') || t.startsWith('[');
  if (looksJson) {
    try {
      return { text: JSON.stringify(JSON.parse(t), null, 2), json: true };
    } catch {
      /* not JSON after all */
    }
  }
  return { text: body, json: false };
}

export const STATUS_LABEL: Record<string, string> = {
  scheduled: 'Scheduled',
  live: 'Live',
  ended: 'Ended',
  deleted: 'Deleted',
  pending: 'Being projected',
  projected: 'Projected',
  duplicate: 'Duplicate',
  quarantined: 'Quarantined',
  ignored: 'Ignored',
};

export const KIND_LABEL: Record<string, string> = {
  created: 'Created',
  changed: 'Changed',
  published: 'Published',
  registered: 'Registered',
  waiting_room_opened: 'Waiting room opened',
  started: 'Started',
  joined: 'Joined',
  ended: 'Ended',
  replay_viewed: 'Watched the replay',
  deleted: 'Deleted',
};

export function personLabel(p: { name?: string | null; email?: string | null; person_uid?: string; uid?: string }): string {
  return p.name?.trim() || p.email || p.person_uid || p.uid || '(no name)';
}
