// Columns of the people tables on the webinar screen, per audience.
import type { Audience } from '../api';
import type { Participant } from '../types';
import { formatDuration, personLabel } from './format';
import { formatDateTime } from './tz';

export interface Column {
  key: string;
  label: string;
  num?: boolean;
  width: string;
  /** The sortable value (null sorts last). */
  value: (p: Participant) => string | number | null;
  /** The text shown (always text, never HTML). */
  text: (p: Participant, zone: string) => string;
}

const name: Column = { key: 'name', label: 'Name', width: 'minmax(140px, 1.5fr)', value: (p) => personLabel(p).toLowerCase(), text: (p) => personLabel(p) };
const email: Column = { key: 'email', label: 'Email', width: 'minmax(160px, 1.8fr)', value: (p) => p.email, text: (p) => p.email ?? '—' };
const org: Column = { key: 'organization', label: 'Organization', width: 'minmax(120px, 1.4fr)', value: (p) => p.organization, text: (p) => p.organization ?? '—' };
const registeredAt: Column = {
  key: 'registered_at', label: 'Registered', width: 'minmax(160px, 1.1fr)', value: (p) => p.registered_at,
  text: (p, z) => (p.registered ? formatDateTime(p.registered_at, z) + (p.registered_at_is_receipt ? ' (received)' : '') : 'walk-in'),
};
const joined: Column = { key: 'first_joined_at', label: 'First joined', width: 'minmax(160px, 1.1fr)', value: (p) => p.first_joined_at, text: (p, z) => formatDateTime(p.first_joined_at, z) };
const tis: Column = { key: 'time_in_session_secs', label: 'Time in session', num: true, width: 'minmax(140px, 0.9fr)', value: (p) => p.time_in_session_secs, text: (p) => formatDuration(p.time_in_session_secs) };
const joins: Column = { key: 'join_count', label: 'Joins', num: true, width: '70px', value: (p) => p.join_count, text: (p) => String(p.join_count) };
const attended: Column = { key: 'attended', label: 'Attended', width: '90px', value: (p) => (p.attended ? 1 : 0), text: (p) => (p.attended ? 'yes' : 'no') };
const source: Column = { key: 'source', label: 'Source', width: 'minmax(100px, 1fr)', value: (p) => p.utm_source ?? p.source, text: (p) => p.utm_source ?? p.source ?? '—' };
const replays: Column = { key: 'replay_views', label: 'Replay views', num: true, width: '100px', value: (p) => p.replay_views, text: (p) => String(p.replay_views) };
const replayTime: Column = { key: 'replay_secs', label: 'Replay time', num: true, width: '110px', value: (p) => p.replay_secs, text: (p) => (p.replay_secs === null ? '—' : formatDuration(p.replay_secs)) };
const role: Column = { key: 'role', label: 'Role', width: '110px', value: (p) => p.role, text: (p) => p.role.replace(/_/g, ' ') };

export const COLUMNS: Record<Audience, Column[]> = {
  attendees: [name, email, org, registeredAt, joined, tis, joins],
  registrants: [name, email, org, registeredAt, attended, source],
  'no-shows': [name, email, org, registeredAt, source],
  'replay-viewers': [name, email, org, replays, replayTime, attended],
  staff: [name, email, role, joined, tis],
};

export function sortPeople(rows: Participant[], col: Column, dir: 'asc' | 'desc'): Participant[] {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((p, i) => ({ p, i, v: col.value(p) }))
    .sort((a, b) => {
      if (a.v === null && b.v === null) return a.i - b.i;
      if (a.v === null) return 1;
      if (b.v === null) return -1;
      const c = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v), 'en');
      return c === 0 ? a.i - b.i : c * sign;
    })
    .map((x) => x.p);
}

export function matches(p: Participant, q: string): boolean {
  if (!q) return true;
  const needle = q.toLowerCase();
  return [p.name, p.email, p.organization, p.first_name, p.last_name, p.phone, p.source, p.utm_source, p.utm_campaign]
    .some((v) => v != null && v.toLowerCase().includes(needle));
}
