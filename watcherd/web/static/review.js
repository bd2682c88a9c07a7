// The review queue's keys and buttons: each decision is one same-origin POST to the JSON API.
"use strict";
(function () {
  const status = document.getElementById("status");
  const items = () => Array.from(document.querySelectorAll("[data-collision-id]"));
  let current = items().find((el) => !el.classList.contains("done")) || null;
  const decided = []; // items decided on this page, newest last, for undo

  function select(el) {
    if (current) current.classList.remove("current");
    current = el;
    if (el) {
      el.classList.add("current");
      el.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    const all = items();
    const at = all.indexOf(current);
    const next = all[Math.min(all.length - 1, Math.max(0, at + step))];
    if (next) select(next);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  async function decide(el, decision) {
    if (!el || el.classList.contains("done")) return;
    status.textContent = "…";
    try {
      const done = await post("/api/resolve", { id: el.dataset.collisionId, decision: decision });
      el.classList.add("done");
      el.dataset.decision = done.decision;
      decided.push(el);
      status.textContent = done.id + ": " + done.decision;
      const next = items().find((other) => !other.classList.contains("done"));
      select(next || el);
    } catch (err) {
      status.textContent = "not decided: " + err.message;
    }
  }

  async function undo() {
    status.textContent = "…";
    try {
      const done = await post("/api/undo");
      const el = items().find((other) => other.dataset.collisionId === done.id);
      if (el) {
        el.classList.remove("done");
        delete el.dataset.decision;
        const at = decided.indexOf(el);
        if (at >= 0) decided.splice(at, 1);
        select(el);
      } else {
        location.reload(); // a decision made before this page was loaded: show it again
      }
      status.textContent = "undid " + done.id;
    } catch (err) {
      status.textContent = "nothing undone: " + err.message;
    }
  }

  function flip(el) {
    if (el) el.classList.toggle("flipped");
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const el = button.closest("[data-collision-id]");
    if (button.dataset.decision) decide(el, button.dataset.decision);
    else if (button.dataset.action === "undo") undo();
    else if (button.dataset.action === "flip") flip(el);
  });

  const keys = {
    d: () => decide(current, "distinct"),
    e: () => decide(current, "keep-existing"),
    n: () => decide(current, "keep-newcomer"),
    u: () => undo(),
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
