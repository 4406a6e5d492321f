// One task on screen (the #annotate block of templates/annotation/_task.html): wires the rank board (or the
// pairwise verdict), the reading area, drafts, submit, skip and the keyboard. `moveOn(root, upcoming, labelled)`
// is called once it is saved or skipped.
//
// Revise mode (data-mode="revise", README "Annotating by keyboard"): the block starts from data-initial-label
// (shaped as the submit body), submits it with data-submit-method to data-submit-url, and then says "Saved"
// with a link back instead of moving on. Nothing is prefetched and nothing can be skipped there.
import { $, typing } from "./dom.js";
import { draftStore, pruneDrafts } from "./draft.js";
import { applyLabel, labelBody, labelProblem } from "./label.js";
import { pairwiseControls } from "./pairwise.js";
import { prefetch } from "./next.js";
import { rankingControls } from "./ranking.js";
import { readerControls } from "./reader.js";
import { errorDetail, sendJson } from "./send.js";

export function mount(root, { moveOn }) {
  const startedAt = performance.now();
  const kind = root.dataset.kind;
  const revising = root.dataset.mode === "revise";
  const allowTies = root.dataset.allowTies === "true";
  const form = $("#label-form", root);
  const live = $("#live", root);
  const skipForm = $("#skip-form", root);
  const confirmBox = $("#confirm", root);
  const upcoming = revising ? Promise.resolve(null) : prefetch(root);
  const say = (msg) => { live.textContent = msg; };
  const drafts = draftStore(root);
  let confirming = false; // an untouched order was submitted once: the next submit sends it

  const reader = readerControls(root, { say, compareFirst: root.dataset.compare === "true" });
  const ranking = kind === "ranking"
    ? rankingControls(root, { allowTies, say, onPick: reader.pick, onChange: () => { unconfirm(); saveDraft(); } })
    : null;
  const controls = ranking
    ? { onKey: ranking.onKey, judgement: () => ({ ranking: ranking.ranking() }), apply: (label) => ranking.apply(label.ranking, label.touched) }
    : pairwiseControls(root, form, { say, onChange: () => saveDraft() });
  const sender = sending(root, { say, moveOn, upcoming, drafts });

  const state = () => ({ ...labelBody(root, form, controls), touched: ranking ? ranking.touched() : true });
  function saveDraft() { drafts.save(state()); }
  function restore(label) { controls.apply(label); applyLabel(root, form, label); }

  function unconfirm() {
    if (!confirming) return;
    confirming = false;
    confirmBox.textContent = "";
  }

  function submit() {
    const body = labelBody(root, form, controls);
    const message = labelProblem(root, body, { kind, allowTies, form });
    if (message) return showError($("#form-error", root), message);
    if (ranking && !revising && !ranking.touched() && !confirming) {
      confirming = true; // a label in the order shown is what a careless submit looks like (README)
      confirmBox.textContent = "You have not moved anything: this is the order shown. "
        + "Press Ctrl+Enter or Submit again to send it as your ranking.";
      say(confirmBox.textContent);
      return;
    }
    body.time_spent_ms = Math.min(Math.round(performance.now() - startedAt), 86400000);
    sender.send(root.dataset.submitUrl, body, $("#form-error", root), { method: root.dataset.submitMethod || "POST", labelled: true });
  }

  function openSkip(show) {
    if (!skipForm) return;
    skipForm.hidden = !show;
    if (show) $("#skip-reason", root).focus(); else $("#skip-open", root).focus();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  root.addEventListener("change", (e) => { // the label's fields; not the skip reason, nor which two are compared
    if ((skipForm && skipForm.contains(e.target)) || e.target.closest(".reader-bar")) return;
    unconfirm();
    saveDraft();
  });
  root.addEventListener("input", (e) => { if (e.target.id === "rationale" || e.target.id === "flag-reason") saveDraft(); });
  if (skipForm) {
    $("#skip-open", root).addEventListener("click", () => openSkip(true));
    $("#skip-cancel", root).addEventListener("click", () => openSkip(false));
    skipForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const reason = $("#skip-reason", root).value.trim();
      if (!reason) return showError($("#skip-error", root), "Please say why you skip this task.");
      sender.send(root.dataset.skipUrl, { reason }, $("#skip-error", root), { method: "POST", labelled: false });
    });
  }
  clampPrompt(root);

  // Where the page starts: the label being revised, then over it any draft left on this task.
  pruneDrafts();
  if (revising && root.dataset.initialLabel) restore({ ...JSON.parse(root.dataset.initialLabel), touched: true });
  const draft = drafts.load();
  if (draft) {
    restore(draft.state);
    const note = $("#draft-note", root);
    note.textContent = `Draft restored (from ${new Date(draft.savedAt).toLocaleTimeString()}): your unsaved work on this task.`;
    note.hidden = false;
  }
  if (ranking) reader.pick(ranking.current());

  return {
    onKey: keyboard(root, {
      form, skipForm, say, submit, openSkip, busy: sender.busy, onKey: controls.onKey, reader,
      refocus: ranking ? ranking.refocus : () => {},
    }),
  };
}

function clampPrompt(root) { // a long prompt is clamped too, so the board and the texts keep their room
  const body = $("#prompt-body", root), button = $("#prompt-toggle", root);
  button.hidden = body.scrollHeight <= body.clientHeight + 2;
  button.addEventListener("click", () => {
    const open = body.classList.toggle("clamp") === false;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "Show less" : "Show all";
  });
}

function showError(box, msg) {
  box.textContent = msg;
}

// One request at a time; on success the next task comes in (or, revising, "Saved" shows), on failure the
// error shows and the form stays.
function sending(root, { say, moveOn, upcoming, drafts }) {
  let busy = false;
  async function send(url, body, errorBox, { method, labelled }) {
    if (busy) return;
    busy = true;
    root.classList.add("busy");
    showError(errorBox, "");
    $("#saved", root).hidden = true;
    let response = null;
    try { response = await sendJson(url, body, method); } catch { /* offline: said below */ }
    if (response && response.ok) {
      drafts.clear();
      if (root.dataset.mode === "revise") {
        $("#saved", root).hidden = false;
        say("Saved.");
      } else {
        say(labelled ? "Saved." : "Skipped.");
        moveOn(root, upcoming, labelled).catch(() => window.location.assign(root.dataset.nextUrl));
        return;
      }
    } else showError(errorBox, await errorDetail(response));
    busy = false;
    root.classList.remove("busy");
  }
  return { send, busy: () => busy };
}

// The page's shortcuts (listed in the #shortcuts panel); the kind's own keys go to `onKey` first.
function keyboard(root, { form, skipForm, say, submit, openSkip, busy, onKey, reader, refocus }) {
  function toggle(id) {
    const panel = $(id, root);
    panel.open = !panel.open;
    if (panel.open) panel.scrollIntoView({ block: "nearest" });
    say(`${panel.querySelector("summary").textContent.trim()}: ${panel.open ? "shown" : "hidden"}`);
  }

  return (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!skipForm || !skipForm.contains(e.target)) submit();
      return;
    }
    if (e.key === "Escape") {
      if (skipForm && !skipForm.hidden) openSkip(false);
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
      else if (k === "s" && skipForm) openSkip(true);
      else if (k === "c") reader.toggleCompare();
      else if (k === "v") reader.showAll();
      else if (k === "o") reader.toggleClamp();
      else if ((k === "PageDown" || k === "PageUp") && !$("#reader-pane", root).contains(e.target)) reader.scrollReading(k === "PageDown" ? 1 : -1);
      else if (k === "n") { const box = form.elements.none_acceptable; box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); say(`${box.dataset.name}: ${box.checked ? "yes" : "no"}`); }
      else handled = false;
    }
    if (handled) e.preventDefault();
  };
}
