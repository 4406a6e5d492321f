// Pairwise: A / B / tie, and how much better (a strength level; a tie has none).
import { $, $$ } from "./dom.js";

export function pairwiseControls(root, form, { say, onChange }) {
  const radios = (group) => $$(`input[name="${group}"]`, form);

  function choose(value) {
    const radio = radios("choice").find((r) => r.value === value);
    if (!radio) return say("Ties are not allowed in this project");
    radio.checked = true;
    syncStrength();
    onChange();
    say(value === "tie" ? "Tie" : `${value} is better`);
  }

  function pickStrength(index) {
    const radio = radios("strength")[index];
    if (!radio) return;
    if (radio.matches(":disabled")) return say("A tie has no strength");
    radio.checked = true;
    onChange();
    say(radio.dataset.name);
  }

  function syncStrength() { // a tie has no strength
    const strengths = $("#strengths", root);
    const tied = form.elements.choice && form.elements.choice.value === "tie";
    if (!strengths) return;
    strengths.disabled = tied;
    if (tied) radios("strength").forEach((r) => { r.checked = false; });
  }

  function onKey(e, k) {
    if (e.shiftKey && /^Digit[1-9]$/.test(e.code)) { pickStrength(Number(e.code.slice(5)) - 1); return true; }
    if (k === "a" || k === "1") { choose("A"); return true; }
    if (k === "b" || k === "2") { choose("B"); return true; }
    if (k === "=" || k === "t") { choose("tie"); return true; }
    const level = "qwer".indexOf(k);
    if (level >= 0 && k.length === 1) { pickStrength(level); return true; }
    return false;
  }

  // The judgement part of the submitted label: chosen / rejected (+ strength), or a tie, or nothing.
  function judgement() {
    const body = {};
    const choice = form.elements.choice.value;
    const ids = { A: Number($("#card-A", root).dataset.id), B: Number($("#card-B", root).dataset.id) };
    if (choice === "tie") body.tie = true;
    else if (choice) {
      body.chosen = ids[choice];
      body.rejected = ids[choice === "A" ? "B" : "A"];
      const strength = form.elements.strength ? form.elements.strength.value : "";
      if (strength !== "") body.strength = Number(strength);
    }
    return body;
  }

  // A label (a draft, or the one being revised) back into the radios.
  function apply(label) {
    const ids = { A: Number($("#card-A", root).dataset.id), B: Number($("#card-B", root).dataset.id) };
    const choice = label.tie ? "tie" : Object.keys(ids).find((k) => ids[k] === label.chosen);
    radios("choice").forEach((r) => { r.checked = r.value === choice; });
    syncStrength();
    radios("strength").forEach((r) => { r.checked = label.strength !== undefined && label.strength !== null && r.value === String(label.strength); });
  }

  form.addEventListener("change", (e) => { if (e.target.name === "choice") syncStrength(); });
  return { onKey, judgement, apply };
}
