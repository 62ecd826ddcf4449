// A printable sheet of a zone's seat codes (/app/codes/{zone}), for administrators:
// one QR code per seat, each opening that seat's page. Print it from the browser.

import { t } from '../i18n.js';

export async function render(main, ctx) {
  const id = decodeURIComponent(location.pathname.split('/')[3] || '');
  const zone = ctx.model.zones.get(id);
  main.innerHTML = '<h1 id="codes-title"></h1><div id="codes-body"></div>';
  const title = main.querySelector('#codes-title');
  const body = main.querySelector('#codes-body');
  if (ctx.me?.role !== 'admin') {
    title.textContent = t('codes.title', { zone: zone?.name || id });
    body.textContent = t('codes.adminOnly');
    main.dataset.screen = 'codes';
    return;
  }
  if (!zone) {
    title.textContent = t('lobby.unknown', { zone: id });
    return;
  }
  title.textContent = t('codes.title', { zone: zone.name });
  const print = document.createElement('button');
  print.type = 'button';
  print.className = 'button no-print';
  print.textContent = t('codes.print');
  print.addEventListener('click', () => window.print());
  const grid = document.createElement('ul');
  grid.className = 'codes';
  for (const seat of zone.seats.values()) {
    const li = document.createElement('li');
    const img = document.createElement('img');
    img.src = `/api/public/seats/${encodeURIComponent(seat.number)}/qr`;
    img.alt = t('codes.alt', { seat: seat.number });
    img.width = 160;
    img.height = 160;
    const caption = Object.assign(document.createElement('p'), { textContent: `${seat.number} · ${zone.name}` });
    li.append(img, caption);
    grid.appendChild(li);
  }
  body.replaceChildren(print, grid);
  main.dataset.screen = 'codes';
}
