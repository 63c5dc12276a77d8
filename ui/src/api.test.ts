import { afterEach, describe, expect, it, vi } from 'vitest';
import { Api, ApiError, buildUrl } from './api';

function stubFetch(status: number, body: unknown, contentType = 'application/json') {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const fn = vi.fn(async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return new Response(status === 204 ? null : text, { status, headers: { 'Content-Type': contentType } });
  });
  vi.stubGlobal('fetch', fn);
  return calls;
}

afterEach(() => vi.unstubAllGlobals());

describe('buildUrl', () => {
  it('adds the zone and leaves empty filters out', () => {
    expect(buildUrl('webinars', { platform: 'bigmarker', from: '2024-06-01', to: '', q: undefined, sort: 'date', order: 'desc' }, 'Europe/Paris'))
      .toBe('/api/webinars?platform=bigmarker&from=2024-06-01&sort=date&order=desc&tz=Europe%2FParis');
    expect(buildUrl('meta', {}, null)).toBe('/api/meta');
  });
  it('encodes search text', () => {
    expect(buildUrl('people', { q: 'O\'Brien & co', limit: 50 }, 'UTC')).toBe('/api/people?q=O%27Brien+%26+co&limit=50&tz=UTC');
  });
});

describe('Api', () => {
  const api = new Api(() => 'America/New_York');

  it('passes tz and filters on every call', async () => {
    const calls = stubFetch(200, { time_zone: 'America/New_York', webinars: [] });
    await api.webinars({ platform: 'livestorm', q: 'onboarding', sort: 'attendance_rate', order: 'asc' });
    expect(calls[0].url).toBe('/api/webinars?platform=livestorm&q=onboarding&sort=attendance_rate&order=asc&tz=America%2FNew_York');
    expect(calls[0].init?.method).toBe('GET');
  });

  it('encodes uids in paths and passes the session', async () => {
    const calls = stubFetch(200, { people: [] });
    await api.webinarPeople('bigmarker:b7c41e9a2d05', 'no-shows', 's1');
    expect(calls[0].url).toBe('/api/webinars/bigmarker%3Ab7c41e9a2d05/people/no-shows?session=s1&tz=America%2FNew_York');
    await api.person('priya.raman@northwind.io');
    expect(calls[1].url).toBe('/api/people/priya.raman%40northwind.io?tz=America%2FNew_York');
  });

  it('builds export links with the Excel flag', () => {
    expect(api.exportUrl('attendees', { webinar: 'gotowebinar:1', excel: true }))
      .toBe('/api/export/attendees.csv?webinar=gotowebinar%3A1&excel=true&tz=America%2FNew_York');
    expect(api.exportUrl('timeline', { webinar: 'x', session: null, excel: false }))
      .toBe('/api/export/timeline.csv?webinar=x&tz=America%2FNew_York');
  });

  it('posts JSON for a new source and accepts 204 on delete', async () => {
    const calls = stubFetch(200, { id: 1 });
    await api.addSource({ platform: 'gotowebinar', label: 'GoTo', time_zone: null, secret_keys: ['k'] });
    expect(calls[0].init?.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init?.body))).toEqual({ platform: 'gotowebinar', label: 'GoTo', time_zone: null, secret_keys: ['k'] });
    stubFetch(204, '');
    await expect(api.removeSource(1)).resolves.toBeUndefined();
  });

  it('turns error bodies into messages', async () => {
    stubFetch(404, { kind: 'not_found', message: 'there is no webinar "nope"' });
    const err = await api.webinar('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe('there is no webinar "nope"');
    expect((err as ApiError).kind).toBe('not_found');
    expect((err as ApiError).status).toBe(404);
  });

  it('explains errors without a JSON body', async () => {
    stubFetch(502, '<html>Bad gateway</html>', 'text/html');
    await expect(api.meta()).rejects.toThrow('The server answered 502');
    stubFetch(401, '', 'text/plain');
    await expect(api.meta()).rejects.toThrow(/not signed in/);
  });

  it('explains a network failure', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch'); }));
    await expect(api.sources()).rejects.toThrow(/Cannot reach Rollcall: Failed to fetch/);
  });
});
