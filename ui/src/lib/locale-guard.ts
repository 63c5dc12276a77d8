// WebKitGTK reports the POSIX locale as `navigator.language` ("C") when the system runs under
// LANG=C or C.UTF-8 (minimal systems, CI). Intl rejects that tag, and uPlot formats numbers with
// `navigator.language` as soon as it loads, which would stop the whole page. Imported first by
// main.ts, this swaps an unusable tag for en-US before anything else runs.

export function usableLocale(tag: string | undefined): boolean {
  if (!tag) return false;
  try {
    new Intl.NumberFormat(tag);
    return true;
  } catch {
    return false;
  }
}

if (typeof navigator !== 'undefined' && !usableLocale(navigator.language)) {
  Object.defineProperty(navigator, 'language', { value: 'en-US', configurable: true });
  Object.defineProperty(navigator, 'languages', { value: ['en-US'], configurable: true });
}
