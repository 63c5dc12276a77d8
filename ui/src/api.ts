// The one typed client for the Rollcall dashboard API (same origin; the login cookie goes along).
import type {
  ApiErrorBody, Backup, Changes, DeliveryDetail, DeliveryList, DeliveryStatus, Meta, NewSource, PeopleInWebinar,
  PersonLine, PersonReport, Receipt, ReindexReport, RepointReport, SelfTestResult, SourceView, Subscription,
  SubscriptionSettings, SubscriptionsOverview, Timeline, TunnelView, Unsubscribed, WebinarList, WebinarReport,
} from './types';

export type { Changes };

export type Params = Record<string, string | number | boolean | null | undefined>;

export type Audience = 'attendees' | 'registrants' | 'no-shows' | 'replay-viewers' | 'staff';
export type ExportKind = Audience | 'timeline' | 'webinars';
export type WebinarSort = 'date' | 'title' | 'registered' | 'attended' | 'attendance_rate';
export type PeopleSort = 'attended' | 'no_shows' | 'registered' | 'name';

export interface WebinarFilter {
  platform?: string; from?: string; to?: string; q?: string; sort?: WebinarSort; order?: 'asc' | 'desc'; limit?: number;
}
export interface DeliveryFilter {
  status?: DeliveryStatus | ''; platform?: string; source?: number | string; before?: number; limit?: number;
}

/** An API failure, with a message meant for people. */
export class ApiError extends Error {
  readonly status: number;
  readonly kind: string;
  constructor(status: number, kind: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.kind = kind;
  }
}

/** `/api/<path>?<params>&tz=<zone>`; empty, null and undefined params are left out. */
export function buildUrl(path: string, params: Params = {}, tz?: string | null): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    search.append(k, String(v));
  }
  if (tz) search.set('tz', tz);
  const qs = search.toString();
  const clean = path.replace(/^\/+/, '');
  return `/api/${clean}${qs ? `?${qs}` : ''}`;
}

/** One path segment (webinar uids hold `:`, people uids hold `@`). */
export function seg(s: string | number): string {
  return encodeURIComponent(String(s));
}

function isErrorBody(v: unknown): v is ApiErrorBody {
  return typeof v === 'object' && v !== null && typeof (v as ApiErrorBody).message === 'string';
}

/** Turns a failed response into words. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* no body */
  }
  if (text) {
    try {
      const body: unknown = JSON.parse(text);
      if (isErrorBody(body)) return new ApiError(res.status, body.kind ?? 'error', body.message);
    } catch {
      /* not JSON */
    }
  }
  if (res.status === 401 || res.status === 403) {
    return new ApiError(res.status, 'unauthorized', 'This page is not signed in: open the dashboard link Rollcall printed (or restart the app) to sign in again.');
  }
  const what = res.statusText ? `${res.status} ${res.statusText}` : String(res.status);
  const snippet = text && text.length < 200 && !text.trimStart().startsWith('<') ? `: ${text.trim()}` : '';
  return new ApiError(res.status, 'http', `The server answered ${what}${snippet}`);
}

export class Api {
  constructor(
    private readonly zone: () => string | null,
    private readonly fetcher: () => typeof fetch = () => globalThis.fetch.bind(globalThis),
  ) {}

  url(path: string, params: Params = {}): string {
    return buildUrl(path, params, this.zone());
  }

  private async request<T>(method: string, path: string, params: Params = {}, body?: unknown): Promise<T> {
    const init: RequestInit = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    }
    let res: Response;
    try {
      res = await this.fetcher()(this.url(path, params), init);
    } catch (e) {
      throw new ApiError(0, 'network', `Cannot reach Rollcall: ${e instanceof Error ? e.message : String(e)}. Is the app still running?`);
    }
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'bad_response', 'The server sent an answer that is not JSON.');
    }
  }

  meta(): Promise<Meta> {
    return this.request('GET', 'meta');
  }
  webinars(f: WebinarFilter = {}): Promise<WebinarList> {
    return this.request('GET', 'webinars', { ...f });
  }
  webinar(uid: string, session?: string | null): Promise<WebinarReport> {
    return this.request('GET', `webinars/${seg(uid)}`, { session });
  }
  timeline(uid: string, session?: string | null): Promise<Timeline> {
    return this.request('GET', `webinars/${seg(uid)}/timeline`, { session });
  }
  webinarPeople(uid: string, audience: Audience, session?: string | null, limit?: number): Promise<PeopleInWebinar> {
    return this.request('GET', `webinars/${seg(uid)}/people/${audience}`, { session, limit });
  }
  people(p: { q?: string; sort?: PeopleSort; limit?: number; offset?: number } = {}): Promise<PersonLine[]> {
    return this.request('GET', 'people', { ...p });
  }
  person(uid: string): Promise<PersonReport> {
    return this.request('GET', `people/${seg(uid)}`);
  }
  deliveries(f: DeliveryFilter = {}): Promise<DeliveryList> {
    return this.request('GET', 'deliveries', { ...f });
  }
  delivery(id: number): Promise<DeliveryDetail> {
    return this.request('GET', `deliveries/${seg(id)}`);
  }
  reprocess(id: number): Promise<Receipt> {
    return this.request('POST', `deliveries/${seg(id)}/reprocess`);
  }
  reprocessQuarantined(): Promise<ReindexReport> {
    return this.request('POST', 'deliveries/reprocess-quarantined');
  }
  sources(): Promise<SourceView[]> {
    return this.request('GET', 'sources');
  }
  addSource(s: NewSource): Promise<SourceView> {
    return this.request('POST', 'sources', {}, s);
  }
  rotateSource(id: number): Promise<SourceView> {
    return this.request('POST', `sources/${seg(id)}/rotate`);
  }
  removeSource(id: number): Promise<void> {
    return this.request('DELETE', `sources/${seg(id)}`);
  }
  /** A consistent copy of the database into the data directory's backups folder. */
  backup(): Promise<Backup> {
    return this.request('POST', 'backup');
  }
  /** Stores a source's API key or token (write-only: it is never read back). */
  setCredential(id: number, secret: string): Promise<void> {
    return this.request('PUT', `sources/${seg(id)}/credentials`, {}, { secret });
  }
  removeCredential(id: number): Promise<void> {
    return this.request('DELETE', `sources/${seg(id)}/credentials`);
  }
  subscribe(id: number): Promise<Subscription[]> {
    return this.request('POST', `sources/${seg(id)}/subscribe`);
  }
  unsubscribe(id: number): Promise<Unsubscribed> {
    return this.request('DELETE', `sources/${seg(id)}/subscriptions`);
  }
  subscriptions(): Promise<SubscriptionsOverview> {
    return this.request('GET', 'subscriptions');
  }
  repointAll(): Promise<RepointReport> {
    return this.request('POST', 'subscriptions/repoint');
  }
  setSubscriptionSettings(s: SubscriptionSettings): Promise<SubscriptionSettings> {
    return this.request('PUT', 'subscriptions/settings', {}, s);
  }
  /** A CSV download link (same origin: a plain anchor carries the cookie). */
  exportUrl(kind: ExportKind, p: { webinar?: string; session?: string | null; excel?: boolean } = {}): string {
    return this.url(`export/${kind}.csv`, { webinar: p.webinar, session: p.session, excel: p.excel ? 'true' : undefined });
  }
  /** The tunnel: status, public URL, and the sources to re-point when the URL changed. */
  tunnel(): Promise<TunnelView> {
    return this.request('GET', 'tunnel');
  }
  restartTunnel(): Promise<void> {
    return this.request('POST', 'tunnel/restart');
  }
  /** Sends a test delivery for a source through the public URL and reports the round trip. */
  selfTest(sourceId: number): Promise<SelfTestResult> {
    return this.request('POST', 'self-test', {}, { source_id: sourceId });
  }
  eventsUrl(): string {
    return '/api/events';
  }
}
