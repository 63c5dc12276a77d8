import { describe, expect, it } from 'vitest';
import { formatDate, formatDateTime, formatDateTimeZoned, formatTime, isValidZone, zoneLabel, zoneOffsetName } from './tz';

describe('times in the chosen zone', () => {
  it('shows an ISO time with offset in another zone', () => {
    // 20:00 in Paris (CEST, +02:00) is 14:00 in New York (EDT) and 18:00 UTC.
    const iso = '2024-06-12T20:00:00+02:00';
    expect(formatDateTime(iso, 'Europe/Paris')).toBe('12 Jun 2024, 20:00');
    expect(formatDateTime(iso, 'America/New_York')).toBe('12 Jun 2024, 14:00');
    expect(formatDateTime(iso, 'UTC')).toBe('12 Jun 2024, 18:00');
    expect(formatDateTime(iso, 'Asia/Kolkata')).toBe('12 Jun 2024, 23:30');
    expect(formatTime(iso, 'Asia/Kolkata')).toBe('23:30');
  });
  it('names the zone with its offset', () => {
    expect(zoneLabel('Europe/Paris', '2024-06-12T18:00:00Z')).toBe('Europe/Paris (GMT+2)');
    expect(formatDateTimeZoned('2024-06-12T18:00:00Z', 'America/New_York')).toBe('12 Jun 2024, 14:00 GMT-4');
    expect(zoneOffsetName('Asia/Kolkata', '2024-06-12T18:00:00Z')).toBe('GMT+5:30');
  });
  it('follows daylight saving time', () => {
    // Europe/Paris leaves CET for CEST at 01:00 UTC on 31 March 2024.
    expect(formatDateTime('2024-03-31T00:59:00Z', 'Europe/Paris')).toBe('31 Mar 2024, 01:59');
    expect(formatDateTime('2024-03-31T01:00:00Z', 'Europe/Paris')).toBe('31 Mar 2024, 03:00');
    expect(zoneOffsetName('Europe/Paris', '2024-01-15T12:00:00Z')).toBe('GMT+1');
    expect(zoneOffsetName('Europe/Paris', '2024-07-15T12:00:00Z')).toBe('GMT+2');
    // New York falls back on 3 November 2024: 05:30 UTC is 01:30 EDT, 06:30 UTC is 01:30 EST.
    expect(formatDateTimeZoned('2024-11-03T05:30:00Z', 'America/New_York')).toBe('3 Nov 2024, 01:30 GMT-4');
    expect(formatDateTimeZoned('2024-11-03T06:30:00Z', 'America/New_York')).toBe('3 Nov 2024, 01:30 GMT-5');
  });
  it('crosses the date line in the zone, not in UTC', () => {
    expect(formatDate('2024-06-12T23:30:00Z', 'Asia/Tokyo')).toBe('13 Jun 2024');
    expect(formatDate('2024-06-12T23:30:00Z', 'UTC')).toBe('12 Jun 2024');
  });
  it('shows a dash for a missing time and validates zones', () => {
    expect(formatDateTime(null, 'UTC')).toBe('—');
    expect(formatDateTime('not a time', 'UTC')).toBe('—');
    expect(isValidZone('Europe/Paris')).toBe(true);
    expect(isValidZone('Mars/Olympus')).toBe(false);
  });
});
