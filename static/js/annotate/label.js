// The label as the API takes it (POST /api/tasks/{id}/annotations), and the slips worth catching
// before the server's 422.
import { $$ } from "./dom.js";

export function labelBody(form, { judgement, startedAt }) {
  const body = { time_spent_ms: Math.min(Math.round(performance.now() - startedAt), 86400000), ...judgement() };
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

export function labelProblem(form, body, { kind, allowTies }) { // friendlier than the server's 422 for the common slips
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
