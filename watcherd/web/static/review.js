// The review queue's keys and buttons: each decision is one same-origin POST to the JSON API.
//
// Undo's scope is this page: u (and the undo button) undoes the last decision made here and
// still in effect, named to the server by its id and token; the server refuses (409, its
// message shown) unless that decision is the library's last one. A decision made elsewhere
// (the command line, another page, a gesture) is never undone from here. After every
// decision and undo the page asks the server which items are undecided: the heading's
// count (data-count) is that number, a decided item leaves the queue, an undone one comes back.
"use strict";
(function () {
  const status = document.getElementById("status");
  const heading = document.getElementById("queue-heading");
  const queue = document.getElementById("queue");
  const decidedHere = document.getElementById("decided-here");
  const more = document.getElementById("more");
  const empty = document.getElementById("empty");
  const all = () => Array.from(document.querySelectorAll("[data-collision-id]"));
  const queued = () => Array.from(queue.querySelectorAll("[data-collision-id]")).filter((el) => !el.hidden);
  const made = []; // decisions made on this page and still in effect, newest last: {id, token, decision, el}
  let current = queued()[0] || null;
  let pending = Promise.resolve(); // actions run one after another, in the order they were asked for

  function say(text, refused) {
    status.textContent = text;
    status.classList.toggle("refused", Boolean(refused));
  }

  function select(el) {
    if (current) current.classList.remove("current");
    current = el;
    if (el) {
      el.classList.add("current");
      el.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    const shown = queued();
    const at = shown.indexOf(current);
    const next = shown[Math.min(shown.length - 1, Math.max(0, at + step))];
    if (next) select(next);
  }

  async function call(method, url, body) {
    const response = await fetch(url, {
      method: method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const err = new Error(data.error || response.statusText);
      err.details = data;
      throw err;
    }
    return data;
  }

  // An item's place: in the queue (undecided), in "decided on this page" (a decision of
  // this page in effect), or in the queue but hidden (decided elsewhere).
  function place(el, listed) {
    const mine = made.find((m) => m.el === el);
    if (mine && !listed) {
      el.classList.add("done");
      el.dataset.decision = mine.decision;
      el.hidden = false;
      if (el.parentNode !== decidedHere) decidedHere.insertBefore(el, decidedHere.querySelector("h2").nextSibling);
      return;
    }
    if (mine) made.splice(made.indexOf(mine), 1); // undecided again: it was undone elsewhere
    el.classList.remove("done");
    delete el.dataset.decision;
    el.hidden = !listed;
    if (el.parentNode !== queue) {
      const order = Number(el.dataset.order);
      const after = Array.from(queue.querySelectorAll("[data-collision-id]")).find(
        (other) => Number(other.dataset.order) > order,
      );
      queue.insertBefore(el, after || empty);
    }
  }

  function tidy() {
    empty.hidden = queued().length > 0;
    decidedHere.hidden = !decidedHere.querySelector("[data-collision-id]");
    if (!current || current.hidden || current.parentNode !== queue) select(queued()[0] || null);
  }

  // Ask the server what is undecided now: the count, and each item's place.
  async function sync() {
    let listed;
    try {
      listed = await call("GET", "/api/dupes?near=" + queue.dataset.near);
    } catch (err) {
      say(status.textContent + " (the queue could not be refreshed: " + err.message + ")", true);
      return;
    }
    const ids = new Set(listed.map((item) => item.id));
    heading.dataset.count = String(listed.length);
    heading.querySelector(".count").textContent = String(listed.length);
    const onPage = new Set();
    for (const el of all()) {
      onPage.add(el.dataset.collisionId);
      place(el, ids.has(el.dataset.collisionId));
    }
    const extra = listed.filter((item) => !onPage.has(item.id)).length;
    more.hidden = extra === 0;
    more.querySelector(".count").textContent = String(extra);
    tidy();
  }

  async function decide(el, decision) {
    if (!el || el.hidden || el.parentNode !== queue) return;
    say("…");
    try {
      const done = await call("POST", "/api/resolve", { id: el.dataset.collisionId, decision: decision });
      const shown = queued();
      const next = shown[shown.indexOf(el) + 1] || shown[shown.indexOf(el) - 1] || null;
      made.push({ id: done.id, token: done.made.token, decision: done.decision, el: el });
      place(el, false);
      select(next);
      say("Decided " + done.decision + " on " + done.id);
    } catch (err) {
      say("Not decided: " + err.message, true);
    }
    tidy();
    await sync();
  }

  async function undo() {
    const mine = made[made.length - 1];
    if (!mine) {
      say(
        "Nothing undone: no decision made on this page is left to undo " +
          "(a decision made elsewhere is undone with 'watcherd resolve --undo').",
        true,
      );
      return;
    }
    say("…");
    try {
      const done = await call("POST", "/api/undo", { id: mine.id, token: mine.token });
      made.splice(made.indexOf(mine), 1);
      place(mine.el, true);
      select(mine.el);
      say("Undid " + done.undid.decision + " on " + done.undid.id);
    } catch (err) {
      say("Not undone: " + err.message, true);
      const named = err.details && err.details.named;
      if (named && named.in_effect === false) {
        // Undone (or undone and made again) elsewhere: no longer this page's to undo.
        made.splice(made.indexOf(mine), 1);
      }
    }
    tidy();
    await sync();
  }

  function flip(el) {
    if (el) el.classList.toggle("flipped");
  }

  function later(action) {
    pending = pending.then(action).catch((err) => say("Failed: " + err.message, true));
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const el = button.closest("[data-collision-id]");
    if (button.dataset.decision) later(() => decide(el, button.dataset.decision));
    else if (button.dataset.action === "undo") later(undo);
    else if (button.dataset.action === "flip") flip(el);
  });

  const keys = {
    d: () => later(() => decide(current, "distinct")),
    e: () => later(() => decide(current, "keep-existing")),
    n: () => later(() => decide(current, "keep-newcomer")),
    u: () => later(undo),
    f: () => flip(current),
    ArrowDown: () => move(1),
    ArrowRight: () => move(1),
    ArrowUp: () => move(-1),
    ArrowLeft: () => move(-1),
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    const action = keys[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  select(current);
})();
