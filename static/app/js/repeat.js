// "Repeat every week" in the booking form: the member ticks weekdays and a number of
// weeks, and a click on a seat books a weekly series of that seat and those hours
// (all dates or none; the server names the dates in the way). The map keeps showing
// the first day; every date is checked when the series is booked.

import { api, ApiError, attemptKey } from './api.js';
import { locale, t } from './i18n.js';
import { addDays, longDay } from './format.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const MAX_WEEKS = 26;

/** The weekday code of a YYYY-MM-DD date. */
const weekdayOf = (date) => DAYS[(new Date(`${date}T12:00:00Z`).getUTCDay() + 6) % 7];

/** A weekday's name in the chosen language (2024-01-01 was a Monday). */
const dayName = (i, style) => new Intl.DateTimeFormat(locale(), { weekday: style, timeZone: 'UTC' })
  .format(Date.UTC(2024, 0, 1 + i, 12));

export function repeatFields(form, space, onChange) {
  const box = document.createElement('fieldset');
  box.id = 'repeat';
  box.innerHTML = `
    <legend>${t('repeat.legend')}</legend>
    <div><input type="checkbox" id="repeat-weekly">
      <label for="repeat-weekly" class="inline-label">${t('repeat.weekly')}</label></div>
    <div id="repeat-fields" hidden>
      <fieldset class="weekdays"><legend>${t('repeat.on')}</legend>
        ${DAYS.map((d, i) => `<span class="weekday"><input type="checkbox" id="repeat-${d}" value="${d}">
          <label for="repeat-${d}" class="inline-label"><span aria-hidden="true">${dayName(i, 'short')}</span><span class="visually-hidden">${dayName(i, 'long')}</span></label></span>`).join('')}
      </fieldset>
      <div class="field"><label for="repeat-weeks">${t('repeat.weeks')}</label>
        <p class="hint" id="repeat-weeks-hint"></p>
        <input type="number" id="repeat-weeks" min="1" value="4" inputmode="numeric" aria-describedby="repeat-weeks-hint"></div>
      <p class="hint">${t('repeat.hint')}</p>
    </div>
    <p class="error-message" id="repeat-error" hidden></p>`;
  form.appendChild(box);
  const $ = (id) => box.querySelector(`#${id}`);
  const on = () => $('repeat-weekly').checked;

  /** How many weeks from `date` stay within the booking horizon. */
  const maxWeeks = (date) => {
    const last = addDays(space.today, space.horizon_days);
    const days = (Date.parse(`${last}T00:00:00Z`) - Date.parse(`${date}T00:00:00Z`)) / 86_400_000;
    return Math.max(1, Math.min(MAX_WEEKS, Math.floor(days / 7) + 1));
  };

  return {
    on,
    /** Shows the fields for the chosen `date`; the date's own weekday starts ticked. */
    sync(date) {
      $('repeat-fields').hidden = !on();
      if (!date) return;
      const ticked = DAYS.some((d) => $(`repeat-${d}`).checked);
      if (on() && !ticked) $(`repeat-${weekdayOf(date)}`).checked = true;
      const most = maxWeeks(date);
      $('repeat-weeks').max = String(most);
      $('repeat-weeks-hint').textContent = t('repeat.weeksHint', { most });
    },
    /** The pattern, or null with the reason shown beside the fields. */
    pattern(date) {
      const error = $('repeat-error');
      error.hidden = true;
      const weekdays = DAYS.filter((d) => $(`repeat-${d}`).checked);
      const weeks = Number($('repeat-weeks').value);
      const most = maxWeeks(date);
      let problem = null;
      if (!weekdays.length) problem = t('repeat.noDays');
      else if (!Number.isInteger(weeks) || weeks < 1 || weeks > most) problem = t('repeat.weeksInvalid', { most });
      if (problem) { error.textContent = problem; error.hidden = false; return null; }
      return { weekdays, weeks };
    },
    listen() {
      box.addEventListener('change', () => onChange());
    },
  };
}

/** Books the series; answers the status line's words and whether it worked. */
export async function bookSeries(seat, r, pattern, model, member) {
  const body = {
    seat_number: seat, first_date: r.date, start_time: r.from, end_time: r.until, ...pattern,
  };
  try {
    const series = await api('/api/secure/reservation-series', { method: 'POST', body, key: attemptKey() });
    for (const reservation of series.occurrences) {
      model.putReservation(reservation);
      member.apply('reservation_created', { reservation });
    }
    return {
      ok: true,
      words: t('repeat.booked', {
        seat, count: series.occurrences.length, from: r.from, until: r.until,
      }),
    };
  } catch (e) {
    if (e instanceof ApiError && e.status === 409 && e.body.conflicts) {
      const dates = e.body.conflicts.map((c) => longDay(Date.parse(c.occurrence.start))).join('; ');
      return { ok: false, words: t('repeat.conflicts', { seat, dates }) };
    }
    throw e;
  }
}
