// Preflab annotation page (templates/annotation/task.html): rank by drag and drop or keyboard,
// pick chosen/rejected, submit as JSON, skip. Native ES modules, no dependencies, no build step.
// Response text is untrusted: these modules write no HTML. They move the server-rendered nodes and set
// textContent only. The next task is fetched in the background as the server renders it (the same
// template and sanitiser as a page load) and swapped in once the current task is saved (next.js).
import { swapIn } from "./next.js";
import { mount } from "./task.js";

let active = null; // the task on screen: what mount() returned

async function moveOn(root, upcoming, labelled) {
  const next = await swapIn(root, upcoming, labelled);
  if (!next) return;
  active = mount(next, { moveOn });
  next.querySelector("#live").textContent = `${labelled ? "Saved" : "Skipped"}. Next task.`;
}

const first = document.getElementById("annotate");
if (first) {
  active = mount(first, { moveOn });
  document.addEventListener("keydown", (e) => active.onKey(e));
}
