// Preflab annotation page (templates/annotation/task.html): rank by drag and drop or keyboard,
// pick chosen/rejected, submit as JSON, skip. Plain ES2020, no dependencies.
// Response text is untrusted: this file writes no HTML. It moves the server-rendered nodes and sets
// textContent only. The next task is fetched in the background as the server renders it (the same
// template and sanitiser as a page load), parsed with DOMParser (nothing in it runs) and swapped in
// once the current task is saved, so moving on needs no page load.
"use strict";
(() => {
  const $ = (sel, el = document) => el.querySelector(sel);
  const $$ = (sel, el = document) => Array.from(el.querySelectorAll(sel));
  const csrf = $('meta[name="csrf-token"]').content;
  let active = null; // the task on screen: what mount() returned

  function mount(root) {
    const startedAt = performance.now();
    const kind = root.dataset.kind;
    const allowTies = root.dataset.allowTies === "true";
    const form = $("#label-form", root);
    const live = $("#live", root);
    const formError = $("#form-error", root);
    const skipForm = $("#skip-form", root);
    let busy = false;
    const upcoming = prefetch(root);

    const say = (msg) => { live.textContent = msg; };
    const showError = (box, msg) => { box.textContent = msg; if (msg) box.scrollIntoView({ block: "nearest" }); };

    // ---- Ranking: tiers of cards, best first; a tier of several cards is a tie -------------------
    const list = $("#ranking", root);
    let tiers = list ? $$(".rank-card", list).map((card) => [card]) : [];
    let current = tiers.length ? tiers[0][0] : null;
    const cards = () => tiers.flat();
    const tierOf = (card) => tiers.findIndex((tier) => tier.includes(card));
    const name = (card) => "Response " + card.dataset.label;

    function render() {
      cards().forEach((card, k) => {
        if (list.children[k] !== card) list.insertBefore(card, list.children[k] || null);
      });
      tiers.forEach((tier, i) => tier.forEach((card, j) => {
        const tied = tier.length > 1;
        $(".pos", card).textContent = String(i + 1);
        card.classList.toggle("tied", tied);
        card.classList.toggle("tie-first", tied && j === 0);
        card.classList.toggle("tie-last", tied && j === tier.length - 1);
        const set = (act, disabled) => { const b = $(`[data-act="${act}"]`, card); if (b) b.disabled = disabled; };
        set("up", i === 0 && !tied);
        set("down", i === tiers.length - 1 && !tied);
        set("tie", i === 0);
        set("untie", !tied);
      }));
    }

    function setCurrent(card) { // roving tabindex: Tab enters the list at the current card
      current = card;
      cards().forEach((c) => { c.tabIndex = c === card ? 0 : -1; c.classList.toggle("current", c === card); });
    }

    function focusCard(card) {
      if (!card) return;
      setCurrent(card);
      card.focus();
    }

    function announce(card) {
      const i = tierOf(card);
      const others = tiers[i].filter((c) => c !== card).map(name);
      say(`${name(card)}: rank ${i + 1} of ${tiers.length}` + (others.length ? `, tied with ${others.join(", ")}` : ""));
    }

    function changed(card, keepFocus) {
      render();
      if (keepFocus && !keepFocus.disabled) { setCurrent(card); keepFocus.focus(); } else focusCard(card);
      announce(card);
    }

    function take(card) { // remove a card from its tier, dropping the tier if it empties
      const i = tierOf(card);
      tiers[i].splice(tiers[i].indexOf(card), 1);
      if (!tiers[i].length) tiers.splice(i, 1);
    }

    function move(card, dir, keepFocus) {
      const i = tierOf(card);
      if (tiers[i].length > 1) { // leave the tie, just above or below it
        take(card);
        tiers.splice(dir < 0 ? i : i + 1, 0, [card]);
      } else {
        const j = i + dir;
        if (j < 0 || j >= tiers.length) return say(`${name(card)} is already ${dir < 0 ? "first" : "last"}`);
        tiers.splice(i, 1);
        tiers.splice(j, 0, [card]);
      }
      changed(card, keepFocus);
    }

    function tie(card, keepFocus) { // merge the card's tier with the tier above
      if (!allowTies) return say("Ties are not allowed in this project");
      const i = tierOf(card);
      if (i === 0) return say(`${name(card)} is ranked first: nothing above to tie with`);
      tiers[i - 1].push(...tiers[i]);
      tiers.splice(i, 1);
      changed(card, keepFocus);
    }

    function untie(card, keepFocus) { // the card leaves its tie, ranked just below it
      const i = tierOf(card);
      if (tiers[i].length < 2) return say(`${name(card)} is not tied`);
      take(card);
      tiers.splice(i + 1, 0, [card]);
      changed(card, keepFocus);
    }

    function place(card, target, after) { // drag and drop: the card becomes its own tier next to the target's
      if (card === target) return;
      take(card);
      const i = tierOf(target);
      tiers.splice(after ? i + 1 : i, 0, [card]);
      changed(card);
    }

    function rankingKey(e, k) {
      const card = current;
      const moving = e.shiftKey || e.altKey;
      const inList = list.contains(document.activeElement);
      if (k === "ArrowUp" || k === "ArrowDown" || k === "k" || k === "j") {
        const dir = k === "ArrowUp" || k === "k" ? -1 : 1;
        if (moving) move(card, dir);
        else if (!inList) focusCard(card);
        else { const all = cards(); focusCard(all[Math.min(all.length - 1, Math.max(0, all.indexOf(card) + dir))]); }
        return true;
      }
      if (e.altKey) return false;
      if (k === "Home" || k === "End") { const all = cards(); focusCard(all[k === "Home" ? 0 : all.length - 1]); return true; }
      if (/^[1-9]$/.test(k)) {
        const target = $(`#card-${String.fromCharCode(64 + Number(k))}`, list);
        if (target) { focusCard(target); announce(target); } else say(`There is no response ${String.fromCharCode(64 + Number(k))}`);
        return true;
      }
      if (k === "t") { tie(card); return true; }
      if (k === "u") { untie(card); return true; }
      return false;
    }

    if (list) {
      list.addEventListener("focusin", (e) => {
        const card = e.target.closest(".rank-card");
        if (card && card !== current) setCurrent(card);
      });
      list.addEventListener("click", (e) => {
        const button = e.target.closest("button[data-act]");
        if (!button) return;
        const card = button.closest(".rank-card");
        const act = button.dataset.act;
        if (act === "up" || act === "down") move(card, act === "up" ? -1 : 1, button);
        else if (act === "tie") tie(card, button);
        else if (act === "untie") untie(card, button);
      });

      // HTML5 drag and drop, started from a card's handle.
      let dragged = null;
      const clearMarks = () => $$(".drop-before, .drop-after", list).forEach((c) => c.classList.remove("drop-before", "drop-after"));
      const dropTarget = (e) => {
        const card = e.target instanceof Element ? e.target.closest(".rank-card") : null;
        if (!card || card === dragged) return null;
        const box = card.getBoundingClientRect();
        return { card, after: e.clientY > box.top + box.height / 2 };
      };
      list.addEventListener("dragstart", (e) => {
        dragged = e.target instanceof Element ? e.target.closest(".rank-card") : null;
        if (!dragged) return;
        dragged.classList.add("dragging");
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", name(dragged));
        e.dataTransfer.setDragImage(dragged, 16, 16);
      });
      list.addEventListener("dragover", (e) => {
        if (!dragged) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "move";
        const target = dropTarget(e);
        clearMarks();
        if (target) target.card.classList.add(target.after ? "drop-after" : "drop-before");
      });
      list.addEventListener("drop", (e) => {
        if (!dragged) return;
        e.preventDefault();
        const target = dropTarget(e);
        clearMarks();
        if (target) place(dragged, target.card, target.after);
      });
      list.addEventListener("dragend", () => {
        clearMarks();
        if (dragged) dragged.classList.remove("dragging");
        dragged = null;
      });
      render();
    }

    // ---- Pairwise: A / B / tie, and how much better ----------------------------------------------
    const radios = (group) => $$(`input[name="${group}"]`, form);

    function choose(value) {
      const radio = radios("choice").find((r) => r.value === value);
      if (!radio) return say("Ties are not allowed in this project");
      radio.checked = true;
      syncStrength();
      say(value === "tie" ? "Tie" : `${value} is better`);
    }

    function pickStrength(index) {
      const radio = radios("strength")[index];
      if (!radio) return;
      if (radio.matches(":disabled")) return say("A tie has no strength");
      radio.checked = true;
      say(radio.dataset.name);
    }

    function syncStrength() { // a tie has no strength
      const strengths = $("#strengths", root);
      const tied = form.elements.choice && form.elements.choice.value === "tie";
      if (!strengths) return;
      strengths.disabled = tied;
      if (tied) radios("strength").forEach((r) => { r.checked = false; });
    }

    function pairKey(e, k) {
      if (e.shiftKey && /^Digit[1-9]$/.test(e.code)) { pickStrength(Number(e.code.slice(5)) - 1); return true; }
      if (k === "a" || k === "1") { choose("A"); return true; }
      if (k === "b" || k === "2") { choose("B"); return true; }
      if (k === "=" || k === "t") { choose("tie"); return true; }
      const level = "qwer".indexOf(k);
      if (level >= 0 && k.length === 1) { pickStrength(level); return true; }
      return false;
    }

    if (kind === "pairwise") form.addEventListener("change", (e) => { if (e.target.name === "choice") syncStrength(); });

    // ---- Submit and skip -------------------------------------------------------------------------
    function payload() {
      const body = { time_spent_ms: Math.min(Math.round(performance.now() - startedAt), 86400000) };
      if (kind === "ranking") {
        body.ranking = tiers.map((tier) => tier.map((card) => Number(card.dataset.id)));
      } else {
        const choice = form.elements.choice.value;
        const ids = { A: Number($("#card-A", root).dataset.id), B: Number($("#card-B", root).dataset.id) };
        if (choice === "tie") body.tie = true;
        else if (choice) {
          body.chosen = ids[choice];
          body.rejected = ids[choice === "A" ? "B" : "A"];
          const strength = form.elements.strength ? form.elements.strength.value : "";
          if (strength !== "") body.strength = Number(strength);
        }
      }
      body.none_acceptable = form.elements.none_acceptable.checked;
      const rationale = form.elements.rationale.value.trim();
      if (rationale) body.rationale = rationale;
      if (form.elements.flag.value) {
        body.flag = form.elements.flag.value;
        body.flag_reason = form.elements.flag_reason.value.trim();
      }
      for (const input of $$("[data-criterion]", form)) {
        if (input.value === "") continue;
        (body.ratings ||= {})[input.dataset.criterion] ||= {};
        body.ratings[input.dataset.criterion][input.dataset.response] = Number(input.value);
      }
      return body;
    }

    function problem(body) { // friendlier than the server's 422 for the common slips
      if (kind !== "pairwise") return "";
      if (body.chosen === undefined && !body.tie && !body.none_acceptable && !body.flag) {
        return "Choose the better response (a / b" + (allowTies ? " / =" : "") + "), or tick “Both are bad”.";
      }
      if (body.chosen !== undefined && form.elements.strength && body.strength === undefined) {
        return "Choose how much better it is.";
      }
      const bad = $$("[data-criterion]", form).find((input) => !input.checkValidity());
      return bad ? `Rating ${bad.dataset.criterion}: enter a whole number from ${bad.min} to ${bad.max}.` : "";
    }

    const post = (url, body) => fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });

    async function detail(response) {
      try {
        const data = await response.json();
        if (typeof data.detail === "string") return data.detail;
      } catch { /* not JSON */ }
      return `The server answered ${response.status}; please try again.`;
    }

    async function send(url, body, errorBox, done) {
      if (busy) return;
      busy = true;
      root.classList.add("busy");
      showError(errorBox, "");
      let response = null;
      try { response = await post(url, body); } catch { /* offline: said below */ }
      if (response && response.ok) {
        say(done);
        moveOn(root, upcoming, url === root.dataset.submitUrl).catch(() => window.location.assign(root.dataset.nextUrl));
        return;
      }
      showError(errorBox, response ? await detail(response) : "Could not reach the server. Check your connection and try again.");
      busy = false;
      root.classList.remove("busy");
    }

    function submit() {
      const body = payload();
      const message = problem(body);
      if (message) return showError(formError, message);
      send(root.dataset.submitUrl, body, formError, "Saved.");
    }

    function openSkip(show) {
      skipForm.hidden = !show;
      if (show) $("#skip-reason", root).focus(); else $("#skip-open", root).focus();
    }

    form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    $("#skip-open", root).addEventListener("click", () => openSkip(true));
    $("#skip-cancel", root).addEventListener("click", () => openSkip(false));
    skipForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const reason = $("#skip-reason", root).value.trim();
      if (!reason) return showError($("#skip-error", root), "Please say why you skip this task.");
      send(root.dataset.skipUrl, { reason }, $("#skip-error", root), "Skipped.");
    });

    // ---- Keyboard --------------------------------------------------------------------------------
    const typing = (el) => el instanceof HTMLElement && (el.isContentEditable || el.tagName === "TEXTAREA" ||
      el.tagName === "SELECT" || (el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type)));

    function toggle(id) { const panel = $(id, root); panel.open = !panel.open; say(`${panel.querySelector("summary").textContent.trim()}: ${panel.open ? "shown" : "hidden"}`); }

    function onKey(e) {
      if (e.defaultPrevented || e.isComposing) return;
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (!skipForm.contains(e.target)) submit();
        return;
      }
      if (e.key === "Escape") {
        if (!skipForm.hidden) openSkip(false);
        else if (typing(e.target)) { e.target.blur(); if (current) focusCard(current); }
        return;
      }
      if (typing(e.target) || e.ctrlKey || e.metaKey || busy) return;
      const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      let handled = kind === "ranking" ? rankingKey(e, k) : pairKey(e, k);
      if (!handled && !e.altKey) {
        handled = true;
        if (k === "?") toggle("#shortcuts");
        else if (k === "g") toggle("#guidelines");
        else if (k === "s") openSkip(true);
        else if (k === "n") { const box = form.elements.none_acceptable; box.checked = !box.checked; say(`${box.dataset.name}: ${box.checked ? "yes" : "no"}`); }
        else handled = false;
      }
      if (handled) e.preventDefault();
    }

    return { onKey };
  }

  // ---- Moving on without a page load -----------------------------------------------------------
  // The server leases the next task as soon as this one is shown (an annotator holds at most two leases:
  // the task on screen and the next), and answers with its #annotate block, or 204 when nothing is left.
  function prefetch(root) {
    return fetch(root.dataset.prefetchUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((response) => (response.status === 200 ? response.text() : null))
      .then((html) => {
        const node = html && new DOMParser().parseFromString(html, "text/html").getElementById("annotate");
        return node && { node, expiresAt: Date.now() + 1000 * Number(node.dataset.leaseSeconds) };
      })
      .catch(() => null);
  }

  async function moveOn(root, upcoming, labelled) {
    const fetched = await upcoming;
    const next = fetched && fetched.node;
    // Nothing prefetched, or its lease ran out while this task was open: a page load leases the next task
    // (or says none is left).
    if (!next || next.dataset.submitUrl === root.dataset.submitUrl || Date.now() > fetched.expiresAt - 30000) {
      window.location.assign(root.dataset.nextUrl);
      return;
    }
    for (const panel of ["#shortcuts", "#guidelines"]) { // keep the panels as the annotator left them
      const before = $(panel, root), after = $(panel, next);
      if (before && after) after.open = before.open;
    }
    root.replaceWith(next);
    active = mount(next);
    if (labelled) { const count = $("#progress strong"); count.textContent = String(Number(count.textContent) + 1); }
    window.scrollTo(0, 0);
    $("#live", next).textContent = `${labelled ? "Saved" : "Skipped"}. Next task.`;
  }

  const first = document.getElementById("annotate");
  if (!first) return;
  active = mount(first);
  document.addEventListener("keydown", (e) => active.onKey(e));
})();
