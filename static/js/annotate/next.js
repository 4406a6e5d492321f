// Moving on without a page load. The server leases the next task as soon as this one is shown (an
// annotator holds at most two leases: the task on screen and the next), and answers with its #annotate
// block, or 204 when nothing is left. It is parsed with DOMParser (nothing in it runs) and swapped in.
import { $ } from "./dom.js";

export function prefetch(root) {
  return fetch(root.dataset.prefetchUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => (response.status === 200 ? response.text() : null))
    .then((html) => {
      const node = html && new DOMParser().parseFromString(html, "text/html").getElementById("annotate");
      return node && { node, expiresAt: Date.now() + 1000 * Number(node.dataset.leaseSeconds) };
    })
    .catch(() => null);
}

// Swaps the prefetched task in for `root` and returns it, or loads the next page (returns null).
export async function swapIn(root, upcoming, labelled) {
  const fetched = await upcoming;
  const next = fetched && fetched.node;
  // Nothing prefetched, or its lease ran out while this task was open: a page load leases the next task
  // (or says none is left).
  if (!next || next.dataset.submitUrl === root.dataset.submitUrl || Date.now() > fetched.expiresAt - 30000) {
    window.location.assign(root.dataset.nextUrl);
    return null;
  }
  for (const panel of ["#shortcuts", "#guidelines"]) { // keep the panels as the annotator left them
    const before = $(panel, root), after = $(panel, next);
    if (before && after) after.open = before.open;
  }
  root.replaceWith(next);
  const bump = (id, by) => { const count = $(id); if (count) count.textContent = String(Math.max(0, Number(count.textContent) + by)); };
  bump("#left-count", -1); // the project's percentage waits for the next page load (it counts everyone's labels)
  if (labelled) bump("#done-count", 1);
  window.scrollTo(0, 0);
  return next;
}
