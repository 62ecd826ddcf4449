// Books: search the catalogue by title or author and condition, reserve copies, or
// reserve copies together with a seat for a day (a bundle: both or neither). Available
// copies follow the live stock events. Below, the member's book reservations.

import { api, attemptKey } from '../api.js';
import { locale, t } from '../i18n.js';
import { day } from '../format.js';
import { notice } from '../notice.js';

// The catalogue gives prices in hundredths and names no currency; they are shown as
// the amount they are, formatted for the language.
const price = (cents) => new Intl.NumberFormat(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(cents / 100);

export async function render(main, ctx) {
  main.innerHTML = `
    <h1 data-i18n="books.title"></h1>
    <div id="books-status" class="notice" role="status" aria-live="polite"></div>
    <form id="book-search" class="panel inline" role="search">
      <div class="field"><label for="book-q" data-i18n="books.search"></label>
        <input id="book-q" name="q" type="search" maxlength="100"></div>
      <div class="field"><label for="book-condition" data-i18n="books.condition"></label>
        <select id="book-condition" name="condition">
          <option value="" data-i18n="books.any"></option>
          <option value="new" data-i18n="condition.new"></option>
          <option value="pre_loved" data-i18n="condition.pre_loved"></option>
        </select></div>
      <div class="field"><button class="button" type="submit" data-i18n="books.find"></button></div>
    </form>
    <ul class="cards" id="book-results" aria-live="polite"></ul>
    <p><button type="button" class="button secondary" id="more-books" hidden data-i18n="books.more"></button></p>
    <h2 data-i18n="books.mine"></h2>
    <ul class="cards" id="my-books"></ul>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const status = $('books-status');
  const { say, failure } = notice(status);
  const titles = new Map(); // book id → title, for the member's list
  let cursor = null;

  function seatOptions(select) {
    for (const zone of ctx.model.zones.values()) {
      const group = document.createElement('optgroup');
      group.label = zone.name;
      for (const seat of zone.seats.values()) {
        const o = document.createElement('option');
        o.value = seat.number;
        o.textContent = seat.number;
        group.appendChild(o);
      }
      select.appendChild(group);
    }
  }

  function bookCard(book) {
    titles.set(book.id, book.title);
    const li = document.createElement('li');
    li.className = 'card';
    li.dataset.book = book.id;
    const id = `book-${book.id}`;
    li.innerHTML = `
      <div><h3></h3><p class="by"></p><p><span class="tag"></span> <span class="copies"></span></p></div>
      <form class="actions reserve" novalidate>
        <div class="field"><label for="${id}-copies" data-i18n="books.copies"></label>
          <input id="${id}-copies" name="copies" type="number" min="1" max="20" value="1" inputmode="numeric"></div>
        <button class="button" type="submit" data-i18n="books.reserve"></button>
      </form>
      <details class="more"><summary data-i18n="books.withSeat"></summary>
        <form class="bundle" novalidate>
          <div class="field"><label for="${id}-seat" data-i18n="books.seat"></label><select id="${id}-seat" name="seat"></select></div>
          <div class="field"><label for="${id}-date" data-i18n="book.date"></label>
            <input id="${id}-date" name="date" type="date"></div>
          <button class="button" type="submit" data-i18n="books.reserveBoth"></button>
        </form>
      </details>`;
    li.querySelector('h3').textContent = book.title;
    li.querySelector('.by').textContent = t('books.by', { author: book.author })
      + (book.price_cents ? ` · ${t('books.price', { amount: price(book.price_cents) })}` : '');
    li.querySelector('.tag').textContent = t(`condition.${book.condition}`);
    const copies = li.querySelector('.copies');
    const showStock = (available) => { copies.textContent = t('books.available', { n: available }); };
    showStock(book.available_copies);
    li.showStock = showStock;
    const date = li.querySelector(`#${id}-date`);
    date.value = ctx.space.today;
    date.min = ctx.space.today;
    seatOptions(li.querySelector('select'));
    const needMember = () => {
      if (ctx.signedIn()) return false;
      ctx.flash = t('books.signIn');
      ctx.navigate('/app/sign-in?next=/app/books');
      return true;
    };
    li.querySelector('.reserve').addEventListener('submit', async (e) => {
      e.preventDefault();
      if (needMember()) return;
      const n = Number(e.target.copies.value);
      if (!Number.isInteger(n) || n < 1 || n > 20) { say(t('books.copiesInvalid'), 'failure'); return; }
      const button = e.target.querySelector('button');
      button.disabled = true;
      try {
        await api('/api/secure/book-reservations', { method: 'POST', key: attemptKey(), body: { book_id: book.id, copies: n } });
        say(t('books.reserved', { title: book.title, n }), 'success');
        await mine();
      } catch (err) { failure(err); } finally { button.disabled = false; }
    });
    li.querySelector('.bundle').addEventListener('submit', async (e) => {
      e.preventDefault();
      if (needMember()) return;
      const button = e.target.querySelector('button');
      button.disabled = true;
      const seat = { seat_number: e.target.seat.value, reservation_date: e.target.date.value };
      try {
        const bundle = await api('/api/secure/bundles', { method: 'POST', key: attemptKey(), body: { seat, book: { book_id: book.id, copies: 1 } } });
        ctx.model.putReservation(bundle.seat_reservation);
        say(t('books.bundled', { title: book.title, seat: seat.seat_number, day: day(Date.parse(bundle.seat_reservation.start)) }), 'success');
        await mine();
      } catch (err) { failure(err); } finally { button.disabled = false; }
    });
    return li;
  }

  async function search(more = false) {
    const q = $('book-q').value.trim();
    const condition = $('book-condition').value;
    const params = new URLSearchParams({ limit: '20' });
    if (q) params.set('q', q);
    if (condition) params.set('condition', condition);
    if (more && cursor) params.set('cursor', cursor);
    try {
      const page = await api(`/api/public/books?${params}`);
      const cards = page.items.map(bookCard);
      if (more) $('book-results').append(...cards); else $('book-results').replaceChildren(...cards);
      if (!more && !page.items.length) {
        const li = document.createElement('li');
        li.textContent = t('books.none');
        $('book-results').appendChild(li);
      }
      cursor = page.next_cursor;
      $('more-books').hidden = !cursor;
      // Cards are translated as they are added.
      const { translate } = await import('../i18n.js');
      translate($('book-results'));
    } catch (err) { failure(err); }
  }

  async function mine() {
    const list = $('my-books');
    if (!ctx.signedIn()) {
      list.replaceChildren(Object.assign(document.createElement('li'), { textContent: t('books.signIn') }));
      return;
    }
    try {
      const page = await api('/api/secure/my-book-reservations?limit=50');
      const cards = await Promise.all(page.items.map(async (r) => {
        if (!titles.has(r.book_id)) {
          titles.set(r.book_id, (await api(`/api/public/books/${r.book_id}`).catch(() => ({ title: `#${r.book_id}` }))).title);
        }
        const li = document.createElement('li');
        li.className = 'card';
        const info = document.createElement('div');
        const h = document.createElement('h3');
        h.textContent = titles.get(r.book_id);
        const p = document.createElement('p');
        p.textContent = t('books.reservation', { n: r.copies, until: day(Date.parse(r.expires_at)) });
        const tag = document.createElement('span');
        tag.className = `tag ${r.status}`;
        tag.textContent = t(`bookStatus.${r.status}`);
        info.append(h, p, tag);
        li.appendChild(info);
        if (r.status === 'reserved') {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'button warning';
          b.textContent = t('books.cancel');
          b.addEventListener('click', async () => {
            b.disabled = true;
            try {
              await api(`/api/secure/book-reservations/${r.id}`, { method: 'DELETE' });
              say(t('books.cancelled', { title: titles.get(r.book_id) }), 'success');
              await mine();
            } catch (err) { failure(err); b.disabled = false; }
          });
          li.appendChild(b);
        }
        return li;
      }));
      list.replaceChildren(...cards);
      if (!cards.length) list.appendChild(Object.assign(document.createElement('li'), { textContent: t('books.noneMine') }));
    } catch (err) { failure(err); }
  }

  $('book-search').addEventListener('submit', (e) => { e.preventDefault(); search(); });
  $('more-books').addEventListener('click', () => search(true));
  const offStock = ctx.model.onStock((stock) => {
    main.querySelector(`[data-book="${stock.book_id}"]`)?.showStock(stock.available_copies);
  });
  await Promise.all([search(), mine()]);
  main.dataset.screen = 'books';
  return offStock;
}
