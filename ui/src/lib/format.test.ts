import { describe, expect, it } from 'vitest';
import { formatCount, formatDuration, formatMinutes, formatPercent, formatRate, prettyBody } from './format';

describe('formatDuration', () => {
  it('writes hours and minutes', () => {
    expect(formatDuration(3900)).toBe('1 h 5 min');
    expect(formatDuration(7140)).toBe('1 h 59 min');
    expect(formatDuration(3600)).toBe('1 h');
    expect(formatDuration(2400)).toBe('40 min');
    expect(formatDuration(35)).toBe('35 s');
    expect(formatDuration(0)).toBe('0 s');
  });
  it('rounds to the nearest minute', () => {
    expect(formatDuration(3929)).toBe('1 h 5 min');
    expect(formatDuration(3931)).toBe('1 h 6 min');
  });
  it('says unknown for null, never 0', () => {
    expect(formatDuration(null)).toBe('unknown');
    expect(formatDuration(undefined)).toBe('unknown');
    expect(formatDuration(Number.NaN)).toBe('unknown');
  });
});

describe('percentages', () => {
  it('formats 0..1 ratios with one decimal', () => {
    expect(formatRate(0.6667)).toBe('66.7%');
    expect(formatRate(0.5)).toBe('50%');
    expect(formatRate(1)).toBe('100%');
    expect(formatRate(0)).toBe('0%');
    expect(formatRate(0.12345)).toBe('12.3%');
  });
  it('formats values already in percent', () => {
    expect(formatPercent(78.5)).toBe('78.5%');
    expect(formatPercent(100)).toBe('100%');
  });
  it('says unknown for null', () => {
    expect(formatRate(null)).toBe('unknown');
    expect(formatPercent(null)).toBe('unknown');
  });
});

describe('counts', () => {
  it('writes integers as plain digits', () => {
    expect(formatCount(3)).toBe('3');
    expect(formatCount(12345)).toBe('12345');
    expect(formatCount(0)).toBe('0');
    expect(formatCount(null)).toBe('unknown');
  });
  it('writes minutes', () => {
    expect(formatMinutes(2280)).toBe('38 min');
    expect(formatMinutes(null)).toBe('unknown');
  });
});

describe('prettyBody', () => {
  it('pretty-prints JSON as text', () => {
    expect(prettyBody('{"a":1,"b":"<img src=x onerror=alert(1)>"}', 'application/json')).toEqual({
      text: '{\n  "a": 1,\n  "b": "<img src=x onerror=alert(1)>"\n}',
      json: true,
    });
  });
  it('leaves other bodies alone', () => {
    expect(prettyBody('a=1&b=2', 'application/x-www-form-urlencoded')).toEqual({ text: 'a=1&b=2', json: false });
    expect(prettyBody('{broken', 'application/json')).toEqual({ text: '{broken', json: false });
  });
});
