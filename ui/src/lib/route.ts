export type Route =
  | { name: 'webinars' }
  | { name: 'webinar'; uid: string; session: string | null }
  | { name: 'people' }
  | { name: 'person'; uid: string }
  | { name: 'deliveries'; id: number | null }
  | { name: 'setup' };

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const [pathPart, query = ''] = raw.split('?', 2);
  const segs = pathPart.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const q = new URLSearchParams(query);
  switch (segs[0]) {
    case 'webinars':
      return segs[1] ? { name: 'webinar', uid: segs[1], session: q.get('session') || null } : { name: 'webinars' };
    case 'people':
      return segs[1] ? { name: 'person', uid: segs[1] } : { name: 'people' };
    case 'deliveries': {
      const id = segs[1] ? Number(segs[1]) : NaN;
      return { name: 'deliveries', id: Number.isFinite(id) ? id : null };
    }
    case 'setup':
      return { name: 'setup' };
    default:
      return { name: 'webinars' };
  }
}

export const href = {
  webinars: () => '#/webinars',
  webinar: (uid: string, session?: string | null) =>
    `#/webinars/${encodeURIComponent(uid)}${session ? `?session=${encodeURIComponent(session)}` : ''}`,
  people: () => '#/people',
  person: (uid: string) => `#/people/${encodeURIComponent(uid)}`,
  deliveries: (id?: number | null) => (id ? `#/deliveries/${id}` : '#/deliveries'),
  setup: () => '#/setup',
};
