// One task on screen (the #annotate block of templates/annotation/_task.html): wires its controls,
// submit, skip and keyboard. `moveOn(root, upcoming, labelled)` is called once it is saved or skipped.
import { $, typing } from "./dom.js";
import { labelBody, labelProblem } from "./label.js";
import { pairwiseControls } from "./pairwise.js";
import { prefetch } from "./next.js";
import { rankingControls } from "./ranking.js";
import { errorDetail, postJson } from "./send.js";

export function mount(root, { moveOn }) {
  const startedAt = performance.now();
  const kind = root.dataset.kind;
  const allowTies = root.dataset.allowTies === "true";
  const form = $("#label-form", root);
  const live = $("#live", root);
  const skipForm = $("#skip-form", root);
  const upcoming = prefetch(root);
  const say = (msg) => { live.textContent = msg; };
  const list = $("#ranking", root);
  const ranking = list ? rankingControls(list, { allowTies, say }) : null;
  const controls = kind === "ranking"
    ? { onKey: ranking.onKey, judgement: () => ({ ranking: ranking.ranking() }) }
    : pairwiseControls(root, form, { say });
  const sender = sending(root, { say, moveOn, upcoming });

  function submit() {
    const body = labelBody(form, { judgement: controls.judgement, startedAt });
    const message = labelProblem(form, body, { kind, allowTies });
    if (message) return showError($("#form-error", root), message);
    sender.send(root.dataset.submitUrl, body, $("#form-error", root), "Saved.");
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
    sender.send(root.dataset.skipUrl, { reason }, $("#skip-error", root), "Skipped.");
  });

  return {
    onKey: keyboard(root, {
      form, skipForm, say, submit, openSkip, busy: sender.busy, onKey: controls.onKey,
      refocus: ranking ? ranking.refocus : () => {},
    }),
  };
}

function showError(box, msg) {
  box.textContent = msg;
  if (msg) box.scrollIntoView({ block: "nearest" });
}

// One request at a time; on success the next task comes in, on failure the error shows and the form stays.
function sending(root, { say, moveOn, upcoming }) {
  let busy = false;
  async function send(url, body, errorBox, done) {
    if (busy) return;
    busy = true;
    root.classList.add("busy");
    showError(errorBox, "");
    let response = null;
    try { response = await postJson(url, body); } catch { /* offline: said below */ }
    if (response && response.ok) {
      say(done);
      moveOn(root, upcoming, url === root.dataset.submitUrl).catch(() => window.location.assign(root.dataset.nextUrl));
      return;
    }
    showError(errorBox, await errorDetail(response));
    busy = false;
    root.classList.remove("busy");
  }
  return { send, busy: () => busy };
}

// The page's shortcuts (listed in the #shortcuts panel); the kind's own keys go to `onKey` first.
function keyboard(root, { form, skipForm, say, submit, openSkip, busy, onKey, refocus }) {
  function toggle(id) {
    const panel = $(id, root);
    panel.open = !panel.open;
    say(`${panel.querySelector("summary").textContent.trim()}: ${panel.open ? "shown" : "hidden"}`);
  }

  return (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!skipForm.contains(e.target)) submit();
      return;
    }
    if (e.key === "Escape") {
      if (!skipForm.hidden) openSkip(false);
      else if (typing(e.target)) { e.target.blur(); refocus(); }
      return;
    }
    if (typing(e.target) || e.ctrlKey || e.metaKey || busy()) return;
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    let handled = onKey(e, k);
    if (!handled && !e.altKey) {
      handled = true;
      if (k === "?") toggle("#shortcuts");
      else if (k === "g") toggle("#guidelines");
      else if (k === "s") openSkip(true);
      else if (k === "n") { const box = form.elements.none_acceptable; box.checked = !box.checked; say(`${box.dataset.name}: ${box.checked ? "yes" : "no"}`); }
      else handled = false;
    }
    if (handled) e.preventDefault();
  };
}
