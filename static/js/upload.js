// Preflab project page (templates/projects/page.html): sends the upload form with fetch, its CSRF token in the
// X-CSRF-Token header. The server reads an upload's body only after checking who sends it, so the token
// can't travel inside the body (docs/security.md). The answer (the project page with the import result, or an
// error page) is parsed with DOMParser, where nothing runs, and its <main> replaces this page's.
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-upload]")) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": csrf, Accept: "text/html" },
        credentials: "same-origin",
      });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const main = page.querySelector("main");
      if (main) {
        document.querySelector("main").replaceChildren(...Array.from(main.childNodes).map((n) => document.adoptNode(n)));
        document.title = page.title;
      }
      if (!response.ok && !page.querySelector("#import-result")) window.scrollTo(0, 0);
    } catch (error) {
      alert(`The upload failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
})();
