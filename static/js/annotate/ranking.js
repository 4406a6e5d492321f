// The rank board: one chip per response (its letter, first words, length), in rank order, best first; chips in
// one tier are tied. Reordered by the board's buttons, the keyboard or HTML5 drag and drop. The board only moves
// the server-rendered chips (response text is untrusted and never becomes HTML); the texts stay where they are
// in the reading area (reader.js), so moving a chip never scrolls anything.
import { $, $$ } from "./dom.js";

export function rankingControls(root, { allowTies, say, onPick, onChange }) {
  const list = $("#ranking", root);
  const board = $("#label-form", root);
  const chip = (label) => $(`#chip-${label}`, list);
  let tiers = $$(".chip", list).map((c) => [c]);
  let current = tiers.length ? tiers[0][0] : null;
  let touched = false; // any move at all: an untouched order is confirmed before it is submitted (task.js)
  const chips = () => tiers.flat();
  const tierOf = (c) => tiers.findIndex((tier) => tier.includes(c));
  const name = (c) => "Response " + c.dataset.label;

  function render() {
    chips().forEach((c, k) => {
      if (list.children[k] !== c) list.insertBefore(c, list.children[k] || null);
    });
    tiers.forEach((tier, i) => tier.forEach((c, j) => {
      const tied = tier.length > 1;
      $(".pos", c).textContent = String(i + 1);
      c.classList.toggle("tied", tied);
      c.classList.toggle("tie-first", tied && j === 0);
      c.classList.toggle("tie-last", tied && j === tier.length - 1);
      const note = $(`#card-${c.dataset.label} .rank-note`, root);
      if (note) note.textContent = `rank ${i + 1}${tied ? ", tied" : ""}`;
    }));
    syncButtons();
  }

  function syncButtons() { // the board's buttons act on the picked chip
    const i = tierOf(current);
    const tied = i >= 0 && tiers[i].length > 1;
    const set = (act, disabled) => { const b = $(`[data-act="${act}"]`, board); if (b) b.disabled = disabled; };
    set("up", i === 0 && !tied);
    set("down", i === tiers.length - 1 && !tied);
    set("tie", i === 0);
    set("untie", !tied);
  }

  function setCurrent(c) { // roving tabindex: Tab enters the board at the picked chip
    const changed = c !== current;
    current = c;
    chips().forEach((x) => { x.tabIndex = x === c ? 0 : -1; x.classList.toggle("current", x === c); });
    syncButtons();
    if (changed) onPick(c.dataset.label);
  }

  function reveal(c) { // inside the board only: never scroll the page
    const box = board.getBoundingClientRect(), at = c.getBoundingClientRect();
    if (at.top < box.top) board.scrollTop -= box.top - at.top + 8;
    else if (at.bottom > box.bottom) board.scrollTop += at.bottom - box.bottom + 8;
  }

  function focusChip(c) {
    if (!c) return;
    setCurrent(c);
    c.focus({ preventScroll: true });
    reveal(c);
  }

  function announce(c) {
    const i = tierOf(c);
    const others = tiers[i].filter((x) => x !== c).map(name);
    say(`${name(c)}: rank ${i + 1} of ${tiers.length}` + (others.length ? `, tied with ${others.join(", ")}` : ""));
  }

  function changed(c, keepFocus) {
    touched = true;
    render();
    if (keepFocus && !keepFocus.disabled) { setCurrent(c); keepFocus.focus({ preventScroll: true }); } else focusChip(c);
    announce(c);
    onChange();
  }

  function take(c) { // remove a chip from its tier, dropping the tier if it empties
    const i = tierOf(c);
    tiers[i].splice(tiers[i].indexOf(c), 1);
    if (!tiers[i].length) tiers.splice(i, 1);
  }

  function move(c, dir, keepFocus) {
    const i = tierOf(c);
    if (tiers[i].length > 1) { // leave the tie, just above or below it
      take(c);
      tiers.splice(dir < 0 ? i : i + 1, 0, [c]);
    } else {
      const j = i + dir;
      if (j < 0 || j >= tiers.length) return say(`${name(c)} is already ${dir < 0 ? "first" : "last"}`);
      tiers.splice(i, 1);
      tiers.splice(j, 0, [c]);
    }
    changed(c, keepFocus);
  }

  function tie(c, keepFocus) { // merge the chip's tier with the tier above
    if (!allowTies) return say("Ties are not allowed in this project");
    const i = tierOf(c);
    if (i === 0) return say(`${name(c)} is ranked first: nothing above to tie with`);
    tiers[i - 1].push(...tiers[i]);
    tiers.splice(i, 1);
    changed(c, keepFocus);
  }

  function untie(c, keepFocus) { // the chip leaves its tie, ranked just below it
    const i = tierOf(c);
    if (tiers[i].length < 2) return say(`${name(c)} is not tied`);
    take(c);
    tiers.splice(i + 1, 0, [c]);
    changed(c, keepFocus);
  }

  function place(c, target, after) { // drag and drop: the chip becomes its own tier next to the target's
    if (c === target) return;
    take(c);
    const i = tierOf(target);
    tiers.splice(after ? i + 1 : i, 0, [c]);
    changed(c);
  }

  function pickLetter(letter) {
    const target = chip(letter);
    if (target) { focusChip(target); announce(target); } else say(`There is no response ${letter}`);
  }

  function onKey(e, k) {
    const c = current;
    const moving = e.shiftKey || e.altKey;
    const onBoard = list.contains(document.activeElement);
    if (k === "ArrowUp" || k === "ArrowDown" || k === "k" || k === "j") {
      const dir = k === "ArrowUp" || k === "k" ? -1 : 1;
      if (moving) move(c, dir);
      else if (!onBoard) focusChip(c);
      else { const all = chips(); focusChip(all[Math.min(all.length - 1, Math.max(0, all.indexOf(c) + dir))]); }
      return true;
    }
    if (e.altKey) return false;
    if (k === "Home" || k === "End") { const all = chips(); focusChip(all[k === "Home" ? 0 : all.length - 1]); return true; }
    if (/^[1-9]$/.test(k)) { pickLetter(String.fromCharCode(64 + Number(k))); return true; }
    if (k === "t") { tie(c); return true; }
    if (k === "u") { untie(c); return true; }
    return false;
  }

  // A label's tiers of response ids (a draft, or the label being revised): ignored unless they are exactly
  // this task's responses.
  function apply(idTiers, wasTouched) {
    const byId = new Map(chips().map((c) => [Number(c.dataset.id), c]));
    const flat = (idTiers || []).flat();
    if (flat.length !== byId.size || new Set(flat).size !== flat.length || !flat.every((id) => byId.has(id))) return false;
    tiers = idTiers.map((tier) => tier.map((id) => byId.get(id)));
    touched = Boolean(wasTouched);
    render();
    return true;
  }

  list.addEventListener("focusin", (e) => {
    const c = e.target.closest(".chip");
    if (c && c !== current) setCurrent(c);
  });
  list.addEventListener("click", (e) => { // a click picks (touch screens too); focus follows
    const c = e.target.closest(".chip");
    if (c) focusChip(c);
  });
  $$("[data-act]", board).forEach((button) => button.addEventListener("click", () => {
    const act = button.dataset.act;
    if (act === "up" || act === "down") move(current, act === "up" ? -1 : 1, button);
    else if (act === "tie") tie(current, button);
    else if (act === "untie") untie(current, button);
  }));
  enableDragAndDrop(list, { name, place });
  render();

  return {
    onKey,
    apply,
    pickLetter,
    touched: () => touched,
    current: () => current && current.dataset.label,
    ranking: () => tiers.map((tier) => tier.map((c) => Number(c.dataset.id))),
    refocus: () => { if (current) focusChip(current); },
  };
}

// HTML5 drag and drop of whole chips; `place` does the move. The drop lands before or after the chip under
// the pointer, by which half of it the pointer is in (vertical board) or, in the phone's strip, which side.
function enableDragAndDrop(list, { name, place }) {
  let dragged = null;
  const clearMarks = () => $$(".drop-before, .drop-after", list).forEach((c) => c.classList.remove("drop-before", "drop-after"));
  const dropTarget = (e) => {
    const c = e.target instanceof Element ? e.target.closest(".chip") : null;
    if (!c || c === dragged) return null;
    const box = c.getBoundingClientRect();
    const across = getComputedStyle(list).flexDirection === "row";
    return { chip: c, after: across ? e.clientX > box.left + box.width / 2 : e.clientY > box.top + box.height / 2 };
  };
  list.addEventListener("dragstart", (e) => {
    dragged = e.target instanceof Element ? e.target.closest(".chip") : null;
    if (!dragged) return;
    dragged.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", name(dragged));
  });
  list.addEventListener("dragover", (e) => {
    if (!dragged) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    const target = dropTarget(e);
    clearMarks();
    if (target) target.chip.classList.add(target.after ? "drop-after" : "drop-before");
  });
  list.addEventListener("drop", (e) => {
    if (!dragged) return;
    e.preventDefault();
    const target = dropTarget(e);
    clearMarks();
    if (target) place(dragged, target.chip, target.after);
  });
  list.addEventListener("dragend", () => {
    clearMarks();
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });
}
