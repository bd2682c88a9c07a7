// The review queue: compare modes, keys, decisions, batches, undo and the live queue.
//
// Every decision is one same-origin POST to the JSON API; a batch ("apply the suggested
// keeper to all shown", or keeping a group's keeper that takes several decisions) is one
// POST whose decisions the server records under one batch id, undone as one.
//
// Undo's scope is this page: u (and the undo button) undoes the last decision (or batch)
// made here and still in effect, named to the server by its id and token (or batch id);
// the server refuses (409, its message shown) unless it is the library's last. A decision
// made elsewhere is never undone from here.
//
// The queue is live: the page asks /api/version every two seconds and, when the catalog
// changed, /api/dupes; new items are fetched as HTML (/queue/items) and inserted, items
// decided elsewhere leave, and the heading's count (data-count) follows.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const status = $("#status");
  const heading = $("#queue-heading");
  const queue = $("#queue");
  const decidedHere = $("#decided-here");
  const more = $("#more");
  const empty = $("#empty");
  const filter = $("#filter");
  const applyButton = $('[data-action="apply-suggested"]');
  const help = $("#help");
  const confirmBatch = $("#confirm-batch");
  const made = []; // decisions (and batches) made here and in effect, newest last: {id, token, batch, decision, els}
  const gone = []; // decisions of this page the live queue saw undone elsewhere: u asks the server about them last
  const known = new Set($$("[data-collision-id]").map((el) => el.dataset.collisionId));
  let current = null;
  let pending = Promise.resolve(); // actions run one after another, in the order they were asked for
  let version = null;
  let arrived = 0;

  function say(text, refused) {
    status.textContent = text;
    status.classList.toggle("refused", Boolean(refused));
  }

  const items = () => $$("[data-collision-id]");
  const shownByFilter = (el) => filter.value === "all" || el.dataset.kind === filter.value;
  const queued = () => $$("[data-collision-id]", queue).filter((el) => !el.hidden && shownByFilter(el));

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
      const err = new Error(data.error || data.detail || response.statusText);
      err.details = data;
      throw err;
    }
    return data;
  }

  // --- comparing ---------------------------------------------------------------------------

  const viewerOf = (el) => el && $(".viewer", el);
  const panes = (el) => $$(".pane", viewerOf(el));

  function setMode(el, mode) {
    const viewer = viewerOf(el);
    if (!viewer) return;
    viewer.dataset.view = mode;
    for (const b of $$("[data-mode]", viewer)) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    const [a, b] = panes(el);
    if (mode === "flip" && !a.classList.contains("front") && !b.classList.contains("front")) a.classList.add("front");
    if (mode === "diff") loadDifference(el);
    if (mode === "zoom") centre(el);
    hint(el);
  }

  function hint(el) {
    const viewer = viewerOf(el);
    const text = $(".hint", viewer);
    const front = $(".pane.front .tag", viewer);
    const messages = {
      side: "A left, B right",
      flip: "Showing " + (front ? front.textContent : "A") + " · f flips",
      zoom: "1:1 pixels · drag or scroll: both move together",
      diff: "Brighter is more different",
    };
    text.textContent = messages[viewer.dataset.view] || "";
  }

  function flip(el) {
    const viewer = viewerOf(el);
    if (!viewer) return;
    if (viewer.dataset.view !== "flip") {
      setMode(el, "flip");
      return;
    }
    for (const pane of panes(el)) pane.classList.toggle("front");
    hint(el);
  }

  async function loadDifference(el) {
    const viewer = viewerOf(el);
    const [a, b] = panes(el);
    const img = $(".diff-pane img", viewer);
    const note = $(".diff-note", viewer);
    const key = a.dataset.original + "\n" + b.dataset.original;
    if (viewer.dataset.diffOf === key) return;
    viewer.dataset.diffOf = key;
    if (!a.dataset.original || !b.dataset.original) {
      note.textContent = "No original to compare on one side.";
      return;
    }
    note.textContent = "Working out the difference…";
    const query = "a=" + encodeURIComponent(a.dataset.original) + "&b=" + encodeURIComponent(b.dataset.original);
    try {
      const said = await call("GET", "/api/diff?" + query);
      if (viewer.dataset.diffOf !== key) return;
      img.src = said.image;
      img.hidden = false;
      const share = (100 * said.changed).toFixed(2);
      note.textContent =
        (said.largest === 0 ? "Identical pixels. " : share + "% of the pixels differ visibly; ") +
        "mean difference " + said.mean + " of 255, compared at " + said.size.join("x") +
        (String(said.first) === String(said.second) ? "" : " (A " + said.first.join("x") + ", B " + said.second.join("x") + ")");
    } catch (err) {
      note.textContent = "No difference: " + err.message;
    }
  }

  // 1:1: the two panes scroll together, by the same share of their picture.
  function centre(el) {
    for (const pane of panes(el)) {
      pane.scrollLeft = (pane.scrollWidth - pane.clientWidth) / 2;
      pane.scrollTop = (pane.scrollHeight - pane.clientHeight) / 2;
    }
  }

  // A pane moved by its partner fires a scroll event of its own (later): recognised by the
  // position it was moved to, so the two never chase each other.
  const where = (pane) => Math.round(pane.scrollLeft) + "," + Math.round(pane.scrollTop);
  document.addEventListener(
    "scroll",
    (event) => {
      const pane = event.target.closest && event.target.closest(".pane");
      if (!pane) return;
      const viewer = pane.closest(".viewer");
      if (viewer.dataset.view !== "zoom") return;
      if (pane.dataset.movedTo === where(pane)) return;
      const x = pane.scrollLeft / Math.max(1, pane.scrollWidth - pane.clientWidth);
      const y = pane.scrollTop / Math.max(1, pane.scrollHeight - pane.clientHeight);
      for (const other of $$(".pane", viewer)) {
        if (other === pane) continue;
        other.scrollLeft = x * (other.scrollWidth - other.clientWidth);
        other.scrollTop = y * (other.scrollHeight - other.clientHeight);
        other.dataset.movedTo = where(other);
      }
      delete pane.dataset.movedTo;
    },
    true,
  );

  let drag = null;
  document.addEventListener("pointerdown", (event) => {
    const pane = event.target.closest(".viewer[data-view='zoom'] .pane");
    if (!pane || event.target.closest("a")) return;
    drag = { pane: pane, x: event.clientX, y: event.clientY, left: pane.scrollLeft, top: pane.scrollTop };
    pane.classList.add("dragging");
    event.preventDefault();
  });
  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    drag.pane.scrollLeft = drag.left - (event.clientX - drag.x);
    drag.pane.scrollTop = drag.top - (event.clientY - drag.y);
  });
  document.addEventListener("pointerup", () => {
    if (drag) drag.pane.classList.remove("dragging");
    drag = null;
  });

  // --- a near group's members ----------------------------------------------------------------

  const members = (el) => $$(".member", el);
  const keeperOf = (el) => $(".member.keeper", el);
  const comparedOf = (el) => $(".member.selected", el);
  const pairId = (a, b) => [a, b].sort().join("+");

  function bits(a, b) {
    if (!a || !b || a.length !== b.length) return null;
    let x = BigInt("0x" + a) ^ BigInt("0x" + b);
    let n = 0;
    while (x) {
      n += Number(x & 1n);
      x >>= 1n;
    }
    return n;
  }

  function showIn(pane, member, letter, keeper) {
    const img = $("img", pane);
    img.src = member.dataset.shown;
    img.alt = letter + ": " + member.dataset.label;
    pane.dataset.original = member.dataset.original;
    pane.dataset.member = member.dataset.member;
    pane.style.setProperty("--w", member.dataset.width + "px");
    pane.classList.toggle("keeper", keeper);
    $(".tag", pane).textContent = letter + " · " + member.dataset.label + (keeper ? " · keeper" : "");
    $(".open", pane).href = "/file/" + encodeURI(member.dataset.original);
  }

  function compare(el, member) {
    if (!member || member.classList.contains("keeper")) return;
    for (const m of members(el)) m.classList.toggle("selected", m === member);
    const [a, b] = panes(el);
    showIn(a, keeperOf(el), "A", true);
    showIn(b, member, "B", false);
    hint(el);
    if (viewerOf(el).dataset.view === "diff") loadDifference(el);
  }

  function cycle(el, step) {
    const others = members(el).filter((m) => !m.classList.contains("keeper"));
    if (!others.length) return;
    const at = others.indexOf(comparedOf(el));
    compare(el, others[(at + step + others.length) % others.length]);
  }

  // The decisions that keep the group's keeper (as the server's review.merge_plan).
  function plan(el) {
    const keeper = keeperOf(el);
    const all = members(el);
    const order = (m) => Number(m.dataset.order);
    const last = Math.max(...all.map(order));
    if (order(keeper) === 0) return [{ id: el.dataset.collisionId, decision: "keep-existing" }];
    if (order(keeper) === last) return [{ id: el.dataset.collisionId, decision: "keep-newcomer" }];
    return all
      .filter((m) => m !== keeper)
      .map((m) => ({
        id: pairId(keeper.dataset.member, m.dataset.member),
        decision: order(keeper) < order(m) ? "keep-existing" : "keep-newcomer",
      }));
  }

  function makeKeeper(el, member) {
    const old = keeperOf(el);
    if (!member || member === old) return;
    old.classList.remove("keeper");
    member.classList.add("keeper");
    for (const m of members(el)) {
      const d = bits(m.dataset.hash, member.dataset.hash);
      m.dataset.distance = d === null ? "" : String(d);
      $(".dist", m).innerHTML =
        m === member ? '<span class="badge keeper">keeper</span>' : d + " bits from the keeper";
    }
    el.dataset.keeper = member.dataset.label;
    el.dataset.plan = JSON.stringify(plan(el));
    compare(el, old);
    say("The keeper of this group is now " + member.dataset.label + " (nothing decided yet)");
  }

  // --- deciding ---------------------------------------------------------------------------------

  function placeDecided(el, decision) {
    el.classList.add("done");
    el.dataset.decision = decision;
    el.hidden = false;
    if (el.parentNode !== decidedHere) decidedHere.insertBefore(el, $("h2", decidedHere).nextSibling);
  }

  // An item's place: in the queue (listed as undecided), in "decided on this page" (a
  // decision of this page on it is in effect), or in the queue but hidden (decided elsewhere).
  function place(el, listed) {
    const mine = made.filter((m) => m.els.includes(el));
    if (!listed && mine.length) {
      placeDecided(el, mine[mine.length - 1].decision);
      return;
    }
    for (const m of mine) {
      // Listed again: a decision on this very item was undone elsewhere (not one on a pair of its group).
      if (m.batch || m.id === el.dataset.collisionId) {
        m.els.splice(m.els.indexOf(el), 1);
        if (!m.els.length) {
          forget(m);
          gone.push(m); // the server says what became of it, should u reach it
        }
      }
    }
    el.classList.remove("done");
    delete el.dataset.decision;
    el.hidden = !listed;
    if (el.parentNode !== queue) {
      const order = Number(el.dataset.order);
      const after = $$("[data-collision-id]", queue).find((other) => Number(other.dataset.order) > order);
      queue.insertBefore(el, after || empty);
    }
  }

  function tidy() {
    const shown = queued();
    empty.hidden = shown.length > 0;
    decidedHere.hidden = !$("[data-collision-id]", decidedHere);
    $(".shown-count", applyButton).textContent = String(shown.length);
    applyButton.disabled = shown.length === 0;
    if (!current || current.hidden || current.parentNode !== queue || !shownByFilter(current)) select(shown[0] || null);
  }

  function nextAfter(el) {
    const shown = queued();
    return shown[shown.indexOf(el) + 1] || shown[shown.indexOf(el) - 1] || null;
  }

  async function decide(el, decision, ident) {
    if (!el || el.hidden || el.parentNode !== queue) return;
    say("…");
    try {
      const done = await call("POST", "/api/resolve", { id: ident || el.dataset.collisionId, decision: decision });
      const next = nextAfter(el);
      made.push({ id: done.id, token: done.made.token, decision: done.decision, els: [el] });
      if (!ident) {
        place(el, false);
        select(next);
      }
      say("Decided " + done.decision + " on " + done.id);
    } catch (err) {
      say("Not decided: " + err.message, true);
    }
    tidy();
    await sync();
  }

  // Several decisions as one batch (undone as one): the items they settle, and what each gets.
  async function decideMany(els, decisions, what) {
    say("…");
    try {
      const done = await call("POST", "/api/resolve", { decisions: decisions });
      const settled = els.filter((el) =>
        done.made.some((m) => m.id === el.dataset.collisionId || JSON.parse(el.dataset.plan || "[]").some((p) => p.id === m.id)),
      );
      if (done.made.length) made.push({ batch: done.batch, decision: what, els: settled, count: done.made.length });
      const refused = done.refused.length ? "; " + done.refused.length + " refused: " + done.refused[0].error : "";
      say("Applied " + what + ": " + done.made.length + " decisions (batch " + done.batch + ")" + refused, Boolean(done.refused.length));
    } catch (err) {
      say("Not decided: " + err.message, true);
    }
    tidy();
    await sync();
  }

  function keepSuggested(el) {
    if (!el || el.hidden || el.parentNode !== queue) return Promise.resolve();
    const steps = JSON.parse(el.dataset.plan || "[]");
    if (!steps.length) {
      say("Nothing is suggested for a burst: keep its frames (d) or choose a keep decision", true);
      return Promise.resolve();
    }
    if (steps.length === 1 && steps[0].id === el.dataset.collisionId) return decide(el, steps[0].decision);
    return decideMany([el], steps, "the keeper");
  }

  function onMember(el, action) {
    const keeper = keeperOf(el);
    const member = comparedOf(el);
    if (!el || el.dataset.kind !== "near" || !keeper || !member) return Promise.resolve();
    if (action === "make-keeper") {
      makeKeeper(el, member);
      return Promise.resolve();
    }
    const id = pairId(keeper.dataset.member, member.dataset.member);
    if (action === "not-duplicate") return decide(el, "distinct", id);
    const first = Number(keeper.dataset.order) < Number(member.dataset.order);
    return decide(el, first ? "keep-existing" : "keep-newcomer", id);
  }

  function askApplyAll() {
    const shown = queued();
    if (!shown.length) {
      say("Nothing shown to decide.", true);
      return;
    }
    const steps = shown.flatMap((el) => JSON.parse(el.dataset.plan || "[]"));
    $(".summary", confirmBatch).textContent =
      "Keep the suggested picture in " + shown.length + " item" + (shown.length === 1 ? "" : "s") +
      " shown (" + steps.length + " decision" + (steps.length === 1 ? "" : "s") + ")" +
      (filter.value === "all" ? "." : ", " + filter.options[filter.selectedIndex].text + ".");
    confirmBatch.showModal();
    $('[data-action="confirm-batch"]', confirmBatch).focus();
  }

  function applyAll() {
    confirmBatch.close();
    const shown = queued();
    const steps = shown.flatMap((el) => JSON.parse(el.dataset.plan || "[]"));
    later(() => decideMany(shown, steps, "the suggested keeper").then(() => select(queued()[0] || null)));
  }

  function forget(mine) {
    for (const list of [made, gone]) {
      const at = list.indexOf(mine);
      if (at >= 0) list.splice(at, 1);
    }
  }

  async function undo() {
    const mine = made[made.length - 1] || gone[gone.length - 1];
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
      if (mine.batch) {
        const done = await call("POST", "/api/undo", { batch: mine.batch });
        if (!done.left.length) forget(mine);
        say(
          "Undid batch " + done.batch + ": " + done.undid.length + " decisions" +
            (done.error ? "; " + done.left.length + " left: " + done.error : ""),
          Boolean(done.error),
        );
      } else {
        const done = await call("POST", "/api/undo", { id: mine.id, token: mine.token });
        forget(mine);
        say("Undid " + done.undid.decision + " on " + done.undid.id);
      }
      for (const el of mine.els) place(el, true);
      select(mine.els[0] || current);
    } catch (err) {
      say("Not undone: " + err.message, true);
      const named = err.details && err.details.named;
      if (named && named.in_effect === false) forget(mine); // undone elsewhere: not ours any more
    }
    tidy();
    await sync();
  }

  // --- the live queue -------------------------------------------------------------------------------

  async function insert(ids) {
    const query = ids.map((id) => "id=" + encodeURIComponent(id)).join("&");
    const response = await fetch("/queue/items?" + query, { credentials: "same-origin" });
    if (!response.ok) return;
    const holder = document.createElement("template");
    holder.innerHTML = await response.text();
    for (const el of $$("[data-collision-id]", holder.content)) {
      if (known.has(el.dataset.collisionId)) continue;
      known.add(el.dataset.collisionId);
      el.hidden = true;
      queue.insertBefore(el, empty);
      arrived += 1;
    }
  }

  async function sync() {
    let listed;
    try {
      listed = await call("GET", "/api/dupes?near=" + queue.dataset.near);
    } catch (err) {
      say(status.textContent + " (the queue could not be refreshed: " + err.message + ")", true);
      return;
    }
    const ids = listed.map((item) => item.id);
    const fresh = ids.filter((id) => !known.has(id));
    if (fresh.length) await insert(fresh);
    const order = new Map(ids.map((id, i) => [id, i]));
    for (const el of items()) {
      if (order.has(el.dataset.collisionId)) el.dataset.order = String(order.get(el.dataset.collisionId));
    }
    for (const el of items()) place(el, order.has(el.dataset.collisionId));
    // Listed items in the server's order.
    for (const el of $$("[data-collision-id]", queue).sort((a, b) => Number(a.dataset.order) - Number(b.dataset.order))) {
      queue.insertBefore(el, empty);
    }
    heading.dataset.count = String(listed.length);
    $(".count", heading).textContent = String(listed.length);
    more.hidden = arrived === 0;
    $(".count", more).textContent = String(arrived);
    tidy();
  }

  async function poll() {
    try {
      const said = await call("GET", "/api/version");
      if (version !== null && said.version !== version) later(sync);
      version = said.version;
    } catch (err) {
      // the server is away for a moment: ask again later
    }
    setTimeout(poll, 2000);
  }

  function later(action) {
    pending = pending.then(action).catch((err) => say("Failed: " + err.message, true));
  }

  // --- buttons and keys ------------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const el = event.target.closest("[data-collision-id]");
    if (el && el !== current && el.parentNode === queue) select(el); // a click makes an item current
    const button = event.target.closest("button");
    if (!button) return;
    const action = button.dataset.action;
    if (button.dataset.decision) later(() => decide(el, button.dataset.decision));
    else if (button.dataset.mode) setMode(el, button.dataset.mode);
    else if (action === "undo") later(undo);
    else if (action === "keep-suggested") later(() => keepSuggested(el));
    else if (action === "compare") compare(el, button.closest(".member"));
    else if (["make-keeper", "merge", "not-duplicate"].includes(action)) {
      const member = button.closest(".member");
      if (action !== "make-keeper" && member.classList.contains("keeper")) {
        say("That is the keeper: choose another picture, or make it the keeper of another.", true);
        return;
      }
      compare(el, member);
      later(() => onMember(el, action));
    } else if (action === "apply-suggested") askApplyAll();
    else if (action === "confirm-batch") applyAll();
    else if (action === "cancel-batch") confirmBatch.close();
    else if (action === "help") help.showModal();
    else if (action === "close-help") help.close();
  });

  filter.addEventListener("change", () => {
    for (const el of $$("[data-collision-id]", queue)) el.style.display = shownByFilter(el) ? "" : "none";
    tidy();
  });

  const keys = {
    d: () => later(() => decide(current, "distinct")),
    e: () => later(() => decide(current, "keep-existing")),
    n: () => later(() => decide(current, "keep-newcomer")),
    s: () => later(() => keepSuggested(current)),
    u: () => later(undo),
    a: () => askApplyAll(),
    f: () => flip(current),
    1: () => setMode(current, "side"),
    2: () => setMode(current, "flip"),
    3: () => setMode(current, "zoom"),
    4: () => setMode(current, "diff"),
    "[": () => cycle(current, -1),
    "]": () => cycle(current, 1),
    m: () => later(() => onMember(current, "merge")),
    x: () => later(() => onMember(current, "not-duplicate")),
    p: () => onMember(current, "make-keeper"),
    j: () => move(1),
    k: () => move(-1),
    ArrowDown: () => move(1),
    ArrowRight: () => move(1),
    ArrowUp: () => move(-1),
    ArrowLeft: () => move(-1),
    "?": () => (help.open ? help.close() : help.showModal()),
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    if (document.querySelector("dialog[open]") && event.key !== "?") return; // a dialog has the keys (Esc closes it)
    if (event.key.startsWith("Arrow") && event.target.closest(".viewer[data-view='zoom'] .pane")) return; // scrolls
    const action = keys[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  select(queued()[0] || null);
  for (const el of items()) hint(el);
  poll();
})();
