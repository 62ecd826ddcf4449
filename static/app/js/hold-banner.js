// The banner that appears the moment a waiting member is offered a hold (from their own
// event stream), with the time left and a Confirm button; and a browser notification
// when the member allowed them.

import { api, ApiError } from './api.js';
import { t } from './i18n.js';
import { countdown, range } from './format.js';

export class HoldBanner {
  constructor(element, ctx) {
    this.element = element;
    this.ctx = ctx;
    this.offer = null;
    this.timer = 0;
    ctx.member.onChange((type, data) => {
      if (type === 'snapshot') {
        const offered = [...ctx.member.waitlist.values()].find((w) => w.status === 'offered' && w.hold);
        if (offered) this.show(offered); else this.hide();
      } else if (type === 'hold_offered') {
        this.show(data.entry);
        this.notify(data.entry);
      } else if (type === 'waitlist_updated' && this.offer?.id === data.entry.id) {
        this.hide();
      }
    });
  }

  show(entry) {
    this.offer = entry;
    const text = document.createElement('p');
    text.className = 'summary-line';
    text.id = 'hold-text';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button';
    button.textContent = t('hold.confirm');
    button.addEventListener('click', () => this.confirm(button));
    const result = document.createElement('p');
    result.setAttribute('role', 'status');
    result.id = 'hold-result';
    this.element.replaceChildren(text, button, result);
    this.element.setAttribute('role', 'region');
    this.element.setAttribute('aria-label', t('hold.label'));
    this.element.hidden = false;
    const tick = () => {
      const expires = Date.parse(entry.hold.expires_at);
      text.textContent = t('hold.offered', {
        seat: entry.hold.seat_number,
        when: range(Date.parse(entry.start), Date.parse(entry.end)),
        left: countdown(expires),
      });
    };
    tick();
    clearInterval(this.timer);
    this.timer = setInterval(tick, 1000);
  }

  hide() {
    clearInterval(this.timer);
    this.offer = null;
    this.element.hidden = true;
    this.element.replaceChildren();
  }

  async confirm(button) {
    button.disabled = true;
    const result = this.element.querySelector('#hold-result');
    try {
      const reservation = await api(`/api/secure/holds/${this.offer.id}/confirm`, { method: 'POST' });
      this.hide();
      this.ctx.flash = t('hold.confirmed', { seat: reservation.seat_number });
      if (location.pathname.startsWith('/app/reservations')) this.ctx.navigate('/app/reservations');
      else document.dispatchEvent(new CustomEvent('pica:flash'));
    } catch (e) {
      result.textContent = e instanceof ApiError && e.status === 404 ? t('hold.gone') : t('error.generic');
      button.disabled = false;
    }
  }

  notify(entry) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    new Notification(t('hold.notificationTitle'), { body: t('hold.notificationBody', { seat: entry.hold.seat_number }) });
  }
}
