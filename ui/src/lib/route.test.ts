import { describe, expect, it } from 'vitest';
import { href, parseHash } from './route';
import { alignSeries } from './series';

describe('hash routes', () => {
  it('round-trips webinar uids and sessions', () => {
    const h = href.webinar('gotowebinar:5531907246183920417', '7788');
    expect(h).toBe('#/webinars/gotowebinar%3A5531907246183920417?session=7788');
    expect(parseHash(h)).toEqual({ name: 'webinar', uid: 'gotowebinar:5531907246183920417', session: '7788' });
    expect(parseHash('#/webinars/bigmarker:abc')).toEqual({ name: 'webinar', uid: 'bigmarker:abc', session: null });
  });
  it('parses every screen', () => {
    expect(parseHash('')).toEqual({ name: 'webinars' });
    expect(parseHash('#/people/a%40b.c')).toEqual({ name: 'person', uid: 'a@b.c' });
    expect(parseHash('#/deliveries/42')).toEqual({ name: 'deliveries', id: 42 });
    expect(parseHash('#/deliveries')).toEqual({ name: 'deliveries', id: null });
    expect(parseHash('#/setup')).toEqual({ name: 'setup' });
  });
});

describe('chart series', () => {
  it('aligns two step series and carries values forward', () => {
    const a = alignSeries(
      [{ at: '2024-06-12T18:00:00Z', value: 1 }, { at: '2024-06-12T18:10:00Z', value: 2 }],
      [{ at: '2024-06-12T18:05:00Z', value: 1 }, { at: '2024-06-12T18:20:00Z', value: 0 }],
    );
    expect(a.xs.length).toBe(4);
    expect(a.registrations).toEqual([1, 1, 2, 2]);
    expect(a.presence).toEqual([null, 1, 1, 0]);
  });
});
