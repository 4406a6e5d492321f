// The reading area: the response texts in the order shown (A, B, …), each clamped with "Show all", in a pane
// that scrolls on its own; or "compare": two of them side by side, each column scrolling on its own. Picking a
// response (on the rank board, or a letter key) brings its text into view by scrolling this pane only.
import { $, $$ } from "./dom.js";

// A text too large to format is its <pre> under a notice (app/markdown.py): count and quote the text, not the notice.
const words = (el) => (($("pre.as-text", el) || el).textContent.match(/\S+/g) || []);
const formatLength = (n) => `${n.toLocaleString("en")} ${n === 1 ? "word" : "words"}`;

export function readerControls(root, { say, compareFirst }) {
  const pane = $("#reader-pane", root);
  const cards = $$(".response", pane);
  const byLabel = new Map(cards.map((c) => [c.dataset.label, c]));
  const left = $("#compare-left", root), right = $("#compare-right", root);
  const buttons = { all: $("#view-all", root), compare: $("#view-compare", root) };
  let comparing = false;
  let picked = cards.length ? cards[0].dataset.label : null;
  let before = cards.length > 1 ? cards[1].dataset.label : null; // the response picked before `picked`

  // The chips' first words and lengths, from the rendered text (textContent: nothing is parsed as HTML).
  for (const card of cards) {
    const text = words($(".response-text", card));
    const length = formatLength(text.length);
    $(".len", card).textContent = length;
    const chip = $(`#chip-${card.dataset.label}`, root);
    if (chip) {
      $(".gist", chip).textContent = text.slice(0, 12).join(" ");
      $(".len", chip).textContent = text.length < 1000 ? `${text.length} w` : `${(text.length / 1000).toFixed(1)}k w`;
      chip.title = `Response ${card.dataset.label}: ${length}`;
    }
  }

  function syncClampButtons() { // "Show all" only where the clamp hides something
    for (const card of cards) {
      const text = $(".response-text", card);
      const button = $(".clamp-toggle", card);
      button.hidden = comparing || (card.classList.contains("clamped") && text.scrollHeight <= text.clientHeight + 2);
    }
  }

  function setClamp(card, clamped) {
    card.classList.toggle("clamped", clamped);
    const button = $(".clamp-toggle", card);
    button.setAttribute("aria-expanded", String(!clamped));
    button.textContent = clamped ? "Show all" : "Show less";
  }

  function toggleClamp(label = picked) {
    const card = byLabel.get(label);
    if (!card || comparing) return;
    setClamp(card, !card.classList.contains("clamped"));
    bringIntoView(card);
    say(`Response ${label}: ${card.classList.contains("clamped") ? "clamped" : "shown in full"}`);
  }

  function bringIntoView(card) { // scroll the pane, and nothing else, so the card's top shows
    const top = card.getBoundingClientRect().top - pane.getBoundingClientRect().top + pane.scrollTop - 8;
    pane.scrollTo({ top: Math.max(0, top) });
  }

  function renderCompare() {
    const pair = [left.value, right.value];
    for (const card of cards) {
      card.classList.toggle("slot-left", comparing && card.dataset.label === pair[0]);
      card.classList.toggle("slot-right", comparing && card.dataset.label === pair[1] && pair[0] !== pair[1]);
    }
    pane.classList.toggle("comparing", comparing);
    root.classList.toggle("is-comparing", comparing);
    buttons.all.setAttribute("aria-pressed", String(!comparing));
    buttons.compare.setAttribute("aria-pressed", String(comparing));
    syncClampButtons();
  }

  function comparePair(a, b) { // shown in letter order: the columns keep their place as the pair changes
    if (!a || !b || a === b) return;
    [left.value, right.value] = a < b ? [a, b] : [b, a];
  }

  function setCompare(on) {
    comparing = on && cards.length > 1;
    if (comparing) comparePair(picked, before);
    renderCompare();
    if (!comparing && picked) bringIntoView(byLabel.get(picked));
    say(comparing ? `Comparing ${left.value} and ${right.value}` : "All responses, in the order shown");
  }

  // A response picked on the board: in view in the pane; when comparing, it joins the one picked before it.
  function pick(label) {
    if (label !== picked) { before = picked; picked = label; }
    cards.forEach((c) => c.classList.toggle("current", c.dataset.label === label));
    if (comparing) {
      if (label !== left.value && label !== right.value) comparePair(label, before);
      renderCompare();
    } else bringIntoView(byLabel.get(label));
  }

  function scrollReading(dir) { // PageDown / PageUp: the column of the picked response, or the pane
    const column = comparing ? byLabel.get(picked === right.value ? right.value : left.value) : pane;
    column.scrollBy({ top: dir * column.clientHeight * 0.85 });
  }

  buttons.all.addEventListener("click", () => setCompare(false));
  buttons.compare.addEventListener("click", () => setCompare(true));
  for (const select of [left, right]) select.addEventListener("change", () => {
    if (left.value === right.value) { // the other column takes the one this column showed
      const other = select === left ? right : left;
      other.value = cards.map((c) => c.dataset.label).find((l) => l !== select.value);
    }
    renderCompare();
  });
  for (const card of cards) {
    $(".clamp-toggle", card).addEventListener("click", () => toggleClamp(card.dataset.label));
  }

  comparing = compareFirst && cards.length > 1;
  renderCompare();
  return {
    pick,
    toggleCompare: () => setCompare(!comparing),
    showAll: () => setCompare(false),
    toggleClamp: () => toggleClamp(),
    scrollReading,
    comparing: () => comparing,
  };
}
