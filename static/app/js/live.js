// An event stream that stays connected. EventSource reconnects by itself and sends
// `Last-Event-ID`, so the server replays what was missed or starts with a fresh
// snapshot; when the server refused the stream outright (a restart, a full server, an
// expired session) it is reopened here after a short, growing pause.

export class LiveStream {
  constructor(url, events, { onEvent, onStatus, beforeReopen }) {
    this.url = url;
    this.events = events;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.beforeReopen = beforeReopen;
    this.pause = 500;
    this.closed = false;
    this.open();
  }

  open() {
    const source = new EventSource(this.url, { withCredentials: true });
    this.source = source;
    for (const type of this.events) {
      source.addEventListener(type, (e) => {
        this.pause = 500;
        this.onEvent(type, JSON.parse(e.data));
        if (type === 'snapshot') this.onStatus('live');
      });
    }
    source.addEventListener('open', () => this.onStatus('live'));
    source.addEventListener('error', () => {
      if (this.closed) return;
      this.onStatus('reconnecting');
      if (source.readyState === EventSource.CLOSED) {
        const wait = this.pause;
        this.pause = Math.min(this.pause * 2, 8000);
        setTimeout(async () => {
          if (this.closed) return;
          if (this.beforeReopen) await this.beforeReopen();
          this.open();
        }, wait);
      }
    });
  }

  close() {
    this.closed = true;
    this.source?.close();
  }
}

export const PUBLIC_EVENTS = ['snapshot', 'reservation_created', 'reservation_updated', 'hold_placed',
  'hold_released', 'seat_added', 'seat_moved', 'seat_service_changed', 'book_stock_changed', 'lagged'];
export const MEMBER_EVENTS = ['snapshot', 'reservation_created', 'reservation_updated', 'hold_offered',
  'waitlist_updated', 'book_reservation_updated', 'lagged'];
