// Dates and times in the space's time zone, formatted for the chosen language, and the
// conversion from a wall-clock time in that zone to an instant.

import { locale } from './i18n.js';

let zone = 'UTC';
let skew = 0; // server clock minus this browser's clock, in ms

export function setSpace(space) {
  zone = space.time_zone;
  skew = Date.parse(space.now) - Date.now();
}

/** The server's idea of now, in ms. */
export function now() { return Date.now() + skew; }

const cache = new Map();
function formatter(options) {
  const key = locale() + JSON.stringify(options);
  if (!cache.has(key)) cache.set(key, new Intl.DateTimeFormat(locale(), { timeZone: zone, ...options }));
  return cache.get(key);
}

export const time = (ms) => formatter({ hour: '2-digit', minute: '2-digit', hour12: false }).format(ms);
export const day = (ms) => formatter({ weekday: 'short', day: 'numeric', month: 'short' }).format(ms);
export const longDay = (ms) => formatter({ weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(ms);
export const range = (start, end) => `${day(start)}, ${time(start)}–${time(end)}`;

/** The zone's offset from UTC at instant `ms`, in ms. */
function offsetAt(ms) {
  const parts = {};
  for (const p of formatter({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(ms)) {
    parts[p.type] = p.value;
  }
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant of wall-clock `date` (YYYY-MM-DD) at `hhmm` (HH:MM) in the space's zone. */
export function instant(date, hhmm) {
  const [y, m, d] = date.split('-').map(Number);
  const [h, min] = hhmm.split(':').map(Number);
  const guess = Date.UTC(y, m - 1, d, h, min);
  const first = guess - offsetAt(guess);
  return guess - offsetAt(first);
}

/** RFC 3339 with the zone's offset, as the API expects. */
export function rfc3339(ms) {
  const offset = offsetAt(ms);
  const local = new Date(ms + offset).toISOString().slice(0, 19);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset) / 60000;
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${sign}${hh}:${mm}`;
}

/** `date` plus `days`, as YYYY-MM-DD. */
export function addDays(date, days) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** Minutes and seconds left until `ms`, as m:ss. */
export function countdown(ms) {
  const left = Math.max(0, Math.round((ms - now()) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}
