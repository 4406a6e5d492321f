// Ranking: tiers of cards, best first; a tier of several cards is a tie. Reordered by buttons, keyboard
// or HTML5 drag and drop; the server-rendered cards are moved, never rebuilt (their text is untrusted).
import { $, $$ } from "./dom.js";

export function rankingControls(list, { allowTies, say }) {
  let tiers = $$(".rank-card", list).map((card) => [card]);
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

  function onKey(e, k) {
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
  enableDragAndDrop(list, { name, place });
  render();

  return {
    onKey,
    ranking: () => tiers.map((tier) => tier.map((card) => Number(card.dataset.id))),
    refocus: () => { if (current) focusCard(current); },
  };
}

// HTML5 drag and drop, started from a card's handle; `place` does the move.
function enableDragAndDrop(list, { name, place }) {
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
}
