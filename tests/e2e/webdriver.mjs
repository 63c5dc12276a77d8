// A minimal W3C WebDriver client over fetch: just what the desktop test needs.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(base, timeout = 30_000) {
    this.base = base;
    this.timeout = timeout;
    this.sessionId = null;
  }

  async call(method, path, body, { timeout = this.timeout } = {}) {
    const res = await fetch(this.base + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeout),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path}: ${res.status} ${text}`);
    }
    if (!res.ok || (json.value && json.value.error)) {
      const e = json.value ?? {};
      const err = new Error(`${method} ${path}: ${res.status} ${e.error ?? ''} ${e.message ?? text}`);
      err.webdriver = e.error;
      throw err;
    }
    return json.value;
  }

  s(path) {
    if (!this.sessionId) throw new Error('no WebDriver session');
    return `/session/${this.sessionId}${path}`;
  }

  async newSession(capabilities, { timeout = 60_000 } = {}) {
    const value = await this.call('POST', '/session', { capabilities }, { timeout });
    this.sessionId = value.sessionId;
    return value;
  }

  async deleteSession({ timeout = 30_000 } = {}) {
    if (!this.sessionId) return;
    const path = this.s('');
    this.sessionId = null;
    await this.call('DELETE', path, undefined, { timeout });
  }

  url() {
    return this.call('GET', this.s('/url'));
  }

  /** Runs `script` (a function body) in the page; `args` are passed as `arguments`. */
  execute(script, args = []) {
    return this.call('POST', this.s('/execute/sync'), { script, args });
  }

  async findAll(css) {
    const found = await this.call('POST', this.s('/elements'), { using: 'css selector', value: css });
    return found.map((e) => e[ELEMENT]);
  }

  async click(elementId) {
    await this.call('POST', this.s(`/element/${elementId}/click`), {});
  }

  async text(elementId) {
    return this.call('GET', this.s(`/element/${elementId}/text`));
  }

  async screenshot() {
    return Buffer.from(await this.call('GET', this.s('/screenshot')), 'base64');
  }
}
