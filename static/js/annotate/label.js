// The label as the API takes it (POST /api/tasks/{id}/annotations, or PUT when revising), the slips worth
// catching before the server's 422, and filling the page in from such a label (a draft, or the label revised).
import { $, $$ } from "./dom.js";

// The parts of the label outside the judgement (ranking or chosen/rejected): the form's fields and the ratings,
// which sit with their response in the reading area.
export function labelBody(root, form, { judgement }) {
  const body = { ...judgement() };
  body.none_acceptable = form.elements.none_acceptable.checked;
  const rationale = form.elements.rationale.value.trim();
  if (rationale) body.rationale = rationale;
  if (form.elements.flag.value) {
    body.flag = form.elements.flag.value;
    body.flag_reason = form.elements.flag_reason.value.trim();
  }
  for (const input of $$("[data-criterion]", root)) {
    if (input.value === "") continue;
    (body.ratings ||= {})[input.dataset.criterion] ||= {};
    body.ratings[input.dataset.criterion][input.dataset.response] = Number(input.value);
  }
  return body;
}

// The reverse of labelBody for the same fields; the judgement is the kind's own (ranking.js, pairwise.js).
export function applyLabel(root, form, label) {
  form.elements.none_acceptable.checked = Boolean(label.none_acceptable);
  form.elements.rationale.value = label.rationale || "";
  form.elements.flag.value = label.flag || "";
  form.elements.flag_reason.value = label.flag_reason || "";
  if (label.flag) $("#flag-box", root).open = true;
  for (const input of $$("[data-criterion]", root)) {
    const value = label.ratings && label.ratings[input.dataset.criterion] && label.ratings[input.dataset.criterion][input.dataset.response];
    input.value = value === undefined || value === null ? "" : String(value);
  }
}

export function labelProblem(root, body, { kind, allowTies, form }) { // friendlier than the server's 422 for the common slips
  const bad = $$("[data-criterion]", root).find((input) => !input.checkValidity());
  if (kind !== "pairwise") return bad ? ratingProblem(bad) : "";
  if (body.chosen === undefined && !body.tie && !body.none_acceptable && !body.flag) {
    return "Choose the better response (a / b" + (allowTies ? " / =" : "") + "), or tick “Both are bad”.";
  }
  if (body.chosen !== undefined && form.elements.strength && body.strength === undefined) {
    return "Choose how much better it is.";
  }
  return bad ? ratingProblem(bad) : "";
}

const ratingProblem = (input) => `Rating ${input.dataset.criterion}: enter a whole number from ${input.min} to ${input.max}.`;
