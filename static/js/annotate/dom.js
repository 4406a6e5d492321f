// Small DOM helpers shared by the annotation page's modules (static/js/annotate/).
export const $ = (sel, el = document) => el.querySelector(sel);
export const $$ = (sel, el = document) => Array.from(el.querySelectorAll(sel));

// Focus is in a field that takes text: single-key shortcuts must leave it alone.
export const typing = (el) => el instanceof HTMLElement && (el.isContentEditable || el.tagName === "TEXTAREA" ||
  el.tagName === "SELECT" || (el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type)));
