// Time zones: every time is shown in the organizer's chosen zone, with the zone named.

const STORAGE_KEY = 'rollcall.tz';

export function isValidZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function storedZone(): string | null {
  try {
    const z = globalThis.localStorage?.getItem(STORAGE_KEY);
    return z && isValidZone(z) ? z : null;
  } catch {
    return null;
  }
}

export function storeZone(zone: string | null): void {
  try {
    if (zone) globalThis.localStorage?.setItem(STORAGE_KEY, zone);
    else globalThis.localStorage?.removeItem(STORAGE_KEY);
  } catch {
    /* storage unavailable: the choice lasts for this page only */
  }
}

/** Every IANA zone the engine knows, plus UTC names, sorted. */
export function allZones(extra: string[] = []): string[] {
  let zones: string[] = [];
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    zones = intl.supportedValuesOf ? intl.supportedValuesOf('timeZone') : [];
  } catch {
    zones = [];
  }
  if (zones.length === 0) {
    zones = ['America/Los_Angeles', 'America/New_York', 'Europe/London', 'Europe/Paris', 'Asia/Kolkata', 'Asia/Tokyo', 'Australia/Sydney'];
  }
  return [...new Set([...zones, 'UTC', 'Etc/UTC', ...extra.filter(isValidZone)])].sort();
}

function parse(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

function parts(d: Date, zone: string, opts: Intl.DateTimeFormatOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of new Intl.DateTimeFormat('en-GB', { timeZone: zone, ...opts }).formatToParts(d)) out[p.type] = p.value;
  return out;
}

/** The zone's offset name at an instant: "GMT+2", "GMT-4", "GMT" (UTC). */
export function zoneOffsetName(zone: string, at: Date | string = new Date()): string {
  const d = typeof at === 'string' ? parse(at) ?? new Date() : at;
  return parts(d, zone, { timeZoneName: 'shortOffset' }).timeZoneName ?? zone;
}

/** "Europe/Paris (GMT+2)": the zone named, with its offset at that instant. */
export function zoneLabel(zone: string, at: Date | string = new Date()): string {
  const off = zoneOffsetName(zone, at);
  return off === zone ? zone : `${zone} (${off})`;
}

/** "12 Jun 2024, 20:00" in `zone`; null → "—". */
export function formatDateTime(iso: string | null | undefined, zone: string, withSeconds = false): string {
  const d = parse(iso);
  if (!d) return '—';
  const p = parts(d, zone, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}), hourCycle: 'h23',
  });
  return `${p.day} ${p.month} ${p.year}, ${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ''}`;
}

/** "12 Jun 2024, 20:00 GMT+2": the time with its zone's offset named. */
export function formatDateTimeZoned(iso: string | null | undefined, zone: string): string {
  const d = parse(iso);
  if (!d) return '—';
  return `${formatDateTime(iso, zone)} ${zoneOffsetName(zone, d)}`;
}

/** "12 Jun 2024" in `zone`. */
export function formatDate(iso: string | null | undefined, zone: string): string {
  const d = parse(iso);
  if (!d) return '—';
  const p = parts(d, zone, { year: 'numeric', month: 'short', day: 'numeric' });
  return `${p.day} ${p.month} ${p.year}`;
}

/** "20:00" in `zone`. */
export function formatTime(iso: string | null | undefined, zone: string): string {
  const d = parse(iso);
  if (!d) return '—';
  const p = parts(d, zone, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return `${p.hour}:${p.minute}`;
}

/** Wall-clock fields of an instant in `zone`, as seconds since the epoch *as if that wall time were UTC*.
 *  uPlot draws axis labels in the browser's zone; shifting by the zone offset makes them read in `zone`. */
export function wallClockSeconds(iso: string, zone: string): number {
  const d = new Date(iso);
  const p = parts(d, zone, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000;
}
