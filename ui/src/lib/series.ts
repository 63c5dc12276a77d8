// Builds the chart's aligned step series from the timeline's point lists.
import type { Point } from '../types';

export interface Aligned {
  xs: number[];
  registrations: (number | null)[];
  presence: (number | null)[];
}

const secs = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);

/** Unions the time points of both step series and carries each value forward. */
export function alignSeries(registrations: Point[], presence: Point[]): Aligned {
  const reg = registrations.map((p) => [secs(p.at), Number(p.value)] as const).filter(([t]) => Number.isFinite(t));
  const pres = presence.map((p) => [secs(p.at), Number(p.value)] as const).filter(([t]) => Number.isFinite(t));
  const xs = [...new Set([...reg.map(([t]) => t), ...pres.map(([t]) => t)])].sort((a, b) => a - b);
  const carry = (src: (readonly [number, number])[], before: number | null) => {
    let i = 0;
    let cur: number | null = before;
    return xs.map((x) => {
      while (i < src.length && src[i][0] <= x) cur = src[i++][1];
      return cur;
    });
  };
  return {
    xs,
    registrations: reg.length ? carry(reg, 0) : xs.map(() => null),
    presence: pres.length ? carry(pres, null) : xs.map(() => null),
  };
}
