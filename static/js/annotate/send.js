// Sending JSON with the page's CSRF token, and reading the server's error message.
import { $ } from "./dom.js";

export function sendJson(url, body, method = "POST") {
  return fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": $('meta[name="csrf-token"]').content },
    body: JSON.stringify(body),
  });
}

export async function errorDetail(response) {
  if (!response) return "Could not reach the server. Check your connection and try again.";
  try {
    const data = await response.json();
    if (typeof data.detail === "string") return data.detail;
  } catch { /* not JSON */ }
  return `The server answered ${response.status}; please try again.`;
}
