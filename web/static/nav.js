// The screen lifecycle shared by every screen: which screen is current (answers that arrive after the
// user moved on are dropped), the current screen's one periodic refresh, and re-rendering it.
let seq = 0; // bumps on every navigation
let timer = null; // the one periodic refresh of the current screen (campaign progress)
let render = () => {};

// enter starts a new screen: the previous screen's refresh stops and its late answers are ignored.
export function enter() {
  clearInterval(timer);
  timer = null;
  seq++;
}

// current returns a check that is false once the user has moved to another screen.
export function current() {
  const mine = seq;
  return () => mine === seq;
}

// poll runs fn every ms milliseconds while the screen that called it stays current.
export function poll(fn, ms) {
  clearInterval(timer);
  const ok = current();
  const t = setInterval(() => { if (ok()) fn(); else clearInterval(t); }, ms);
  timer = t;
}

// reload renders the current screen again (after a change it shows).
export function reload() { render(); }

export function setRenderer(fn) { render = fn; }
