// The app's shell: language, session, the two live streams, the header, and a small
// router that draws one screen at a time into <main>. Links inside the app change
// screens without a reload; the address is always a real URL the server also answers.

import { api, onSignedOut, refreshSession, signOut } from './api.js';
import { loadLanguage, t, translate } from './i18n.js';
import { setSpace } from './format.js';
import { LiveStream, MEMBER_EVENTS, PUBLIC_EVENTS } from './live.js';
import { MemberModel, SpaceModel } from './seats.js';
import { definePatterns } from './map.js';
import { HoldBanner } from './hold-banner.js';

const SCREENS = {
  '': () => import('./screens/book.js'),
  'sign-in': () => import('./screens/sign-in.js'),
  reservations: () => import('./screens/reservations.js'),
  books: () => import('./screens/books.js'),
  medicines: () => import('./screens/medicines.js'),
  account: () => import('./screens/account.js'),
  lobby: () => import('./screens/lobby.js'),
  seat: () => import('./screens/seat.js'),
  codes: () => import('./screens/codes.js'),
  admin: () => import('./screens/admin.js'),
};
const NEEDS_MEMBER = new Set(['reservations', 'account', 'admin']);

const ctx = {
  space: null,
  me: null,
  model: new SpaceModel(),
  member: new MemberModel(),
  navigate,
  /** A message shown on the next screen (for example after signing out). */
  flash: null,
  signedIn: () => ctx.me !== null,
  async refreshMe() {
    try {
      ctx.me = await api('/api/secure/me');
    } catch {
      ctx.me = null;
    }
    updateHeader();
    connectMember();
  },
};
window.pica = ctx; // for the browser tests and benchmarks: state, never credentials

let cleanup = null;
let memberStream = null;
const status = { public: 'connecting', member: null };

function showStatus() {
  const live = document.getElementById('live');
  const states = [status.public, status.member].filter(Boolean);
  const state = states.includes('reconnecting') ? 'reconnecting'
    : states.every((s) => s === 'live') ? 'live' : 'connecting';
  live.dataset.state = state;
  live.textContent = t(`live.${state}`);
}

function connectPublic() {
  let snapshots = 0;
  new LiveStream('/api/public/events', PUBLIC_EVENTS, {
    onEvent: (type, data) => {
      if (type === 'snapshot') {
        ctx.model.snapshotPart(data);
        // A fresh snapshot after the first means events were missed; seat spots are
        // not in it, so the layout is read again too.
        if (data.last && (snapshots += 1) > 1) loadLayout();
      } else {
        ctx.model.apply(type, data);
      }
    },
    onStatus: (s) => { status.public = s; showStatus(); },
    // A stream refused outright may be a restart: the layout may have changed too.
    beforeReopen: () => loadLayout(),
  });
}

function connectMember() {
  if (ctx.me && !memberStream) {
    status.member = 'connecting';
    memberStream = new LiveStream('/api/secure/events', MEMBER_EVENTS, {
      onEvent: (type, data) => {
        if (type === 'snapshot') ctx.member.snapshot(data);
        else ctx.member.apply(type, data);
      },
      onStatus: (s) => { status.member = s; showStatus(); },
      // Refused because the access cookie expired: rotate it before reopening.
      beforeReopen: async () => {
        if (!(await refreshSession())) signedOut();
      },
    });
  } else if (!ctx.me && memberStream) {
    memberStream.close();
    memberStream = null;
    status.member = null;
  }
  showStatus();
}

async function loadLayout() {
  try {
    ctx.model.setLayout(await api('/api/public/zones'));
  } catch { /* the stream's reconnection tries again */ }
}

function updateHeader() {
  const who = document.getElementById('who');
  who.textContent = ctx.me ? t('shell.signedInAs', { name: ctx.me.username }) : '';
  document.getElementById('sign-out').hidden = !ctx.me;
  document.getElementById('sign-in-link').hidden = !!ctx.me;
  // Only administrators see the way to the console (the API refuses anyone else).
  document.getElementById('nav-admin').hidden = ctx.me?.role !== 'admin';
  const path = location.pathname.replace(/^\/app\/?/, '');
  document.querySelectorAll('.nav a').forEach((a) => {
    const target = a.getAttribute('href').replace(/^\/app\/?/, '');
    if (target === path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
}

function signedOut(message = 'session.ended') {
  if (!ctx.me) return;
  ctx.me = null;
  connectMember();
  updateHeader();
  ctx.flash = t(message);
  navigate('/app/sign-in');
}

async function draw() {
  if (cleanup) { cleanup(); cleanup = null; }
  const screen = location.pathname.replace(/^\/app\/?/, '').split('/')[0];
  const main = document.getElementById('main');
  if (NEEDS_MEMBER.has(screen) && !ctx.me) {
    ctx.flash = t('session.signInFirst');
    history.replaceState(null, '', `/app/sign-in?next=${encodeURIComponent(location.pathname)}`);
    return draw();
  }
  const load = SCREENS[screen];
  updateHeader();
  if (!load) {
    main.replaceChildren(Object.assign(document.createElement('h1'), { textContent: t('shell.notFound') }));
    return;
  }
  const module = await load();
  main.replaceChildren();
  cleanup = (await module.render(main, ctx)) || null;
  translate(main);
}

export function navigate(path) {
  history.pushState(null, '', path);
  draw().then(() => document.getElementById('main').focus());
}

async function start() {
  await loadLanguage();
  definePatterns();
  translate();
  const chooser = document.getElementById('language');
  chooser.value = document.documentElement.lang;
  chooser.addEventListener('change', async () => {
    await loadLanguage(chooser.value);
    translate();
    updateHeader();
    showStatus();
    await draw();
  });
  document.getElementById('sign-out').addEventListener('click', async () => {
    await signOut();
    signedOut('session.signedOut');
  });
  onSignedOut(() => signedOut());

  ctx.space = await api('/api/public/space');
  setSpace(ctx.space);
  await loadLayout();
  connectPublic();
  await ctx.refreshMe();
  new HoldBanner(document.getElementById('hold-banner'), ctx);
  await draw();
  // In-app navigation only from here: a link followed while the app was still starting
  // loads its page as a plain link does, rather than drawing a screen that this first
  // draw would then replace under the user's hands.
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href^="/app"]');
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || a.target) return;
    e.preventDefault();
    navigate(a.getAttribute('href'));
  });
  window.addEventListener('popstate', () => draw());
  document.body.dataset.ready = 'true';
}

start();
