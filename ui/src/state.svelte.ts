// App-wide state: the organizer's zone, /api/meta, and the live event stream.
import { Api, type Changes } from './api';
import type { Meta, StoreEvent } from './types';
import { storedZone, storeZone } from './lib/tz';

class AppState {
  /** The zone the user picked (localStorage), else null: the machine default from /api/meta. */
  picked = $state<string | null>(storedZone());
  meta = $state<Meta | null>(null);
  metaError = $state<string | null>(null);
  zone = $derived<string>(this.picked ?? this.meta?.time_zone ?? new Intl.DateTimeFormat('en-GB').resolvedOptions().timeZone ?? 'UTC');

  setZone(z: string | null) {
    this.picked = z;
    storeZone(z);
  }
}

export const app = new AppState();
export const api = new Api(() => app.zone);

class Live {
  connected = $state(false);
  everConnected = $state(false);
  /** Deliveries received since this page opened. */
  deliveries = $state(0);
  /** Bumped on every event; screens watch it together with `last`. */
  version = $state(0);
  last = $state<Changes | null>(null);
  /** Bumped on every `tunnel` event (status, URL or output changed). */
  tunnelVersion = $state(0);
  /** Why deliveries are refused until a restart, from a `store` event (a failed write to disk). */
  storeFailure = $state<string | null>(null);
  private source: EventSource | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private delay = 1000;

  start() {
    if (this.source || typeof EventSource === 'undefined') return;
    const es = new EventSource(api.eventsUrl(), { withCredentials: true });
    this.source = es;
    es.onopen = () => {
      this.connected = true;
      this.everConnected = true;
      this.delay = 1000;
    };
    es.addEventListener('changes', (ev) => {
      try {
        const c = JSON.parse((ev as MessageEvent<string>).data) as Changes;
        this.deliveries += Number(c.deliveries) || 0;
        this.last = c;
        this.version += 1;
      } catch {
        /* a malformed event: ignore it */
      }
    });
    es.addEventListener('tunnel', () => {
      this.tunnelVersion += 1;
    });
    es.addEventListener('store', (ev) => {
      try {
        const s = JSON.parse((ev as MessageEvent<string>).data) as StoreEvent;
        this.storeFailure = s.failure;
      } catch {
        /* a malformed event: ignore it */
      }
    });
    es.onerror = () => {
      this.connected = false;
      es.close();
      this.source = null;
      if (this.retry) clearTimeout(this.retry);
      this.retry = setTimeout(() => this.start(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    };
  }

  /** Did the last event change this webinar? */
  touches(uid: string): boolean {
    return !!this.last && this.last.webinars.includes(uid);
  }
}

export const live = new Live();
