import { describe, expect, it } from 'vitest';
import { usableLocale } from './locale-guard';

describe('locale guard', () => {
  it('accepts real language tags and refuses the POSIX locale', () => {
    expect(usableLocale('en-US')).toBe(true);
    expect(usableLocale('fr')).toBe(true);
    expect(usableLocale('C')).toBe(false);
    expect(usableLocale('')).toBe(false);
    expect(usableLocale(undefined)).toBe(false);
  });
});
