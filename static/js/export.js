// Preflab project page (templates/projects/page.html): the export form's preview. As the options change it asks
// GET /api/projects/{id}/export/preview with the form's fields and shows how many pairs (rows) each filter removes,
// or each error next to its field, in words. Submitting still goes to the server route, which checks the same
// options (errors come back on the page without this script). Delegated from document: upload.js may replace <main>.
const FILTER_NAMES = {
  exclude_gold: "leaving out gold prompts",
  exclude_flagged: "leaving out flagged labels",
  exclude_none_acceptable: "leaving out 'none acceptable' labels",
  min_annotators: "at least {} annotators a prompt",
  min_agreement: "agreement at least {}",
  dedupe: "dropping duplicate rows",
};

let timer = null;
let latest = 0;

function exportForm() {
  return document.getElementById("export-form");
}

function query(form) {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) params.append(name, value);
  return params;
}

function showErrors(form, errors) {
  for (const slot of form.querySelectorAll("[data-error-for]")) {
    const message = errors[slot.dataset.errorFor];
    slot.textContent = message || "";
    slot.hidden = !message;
    const field = form.elements.namedItem(slot.dataset.errorFor);
    if (field && field.setAttribute) {
      if (message) {
        field.setAttribute("aria-invalid", "true");
        field.setAttribute("aria-describedby", slot.id);
      } else {
        field.removeAttribute("aria-invalid");
      }
    }
  }
}

function line(text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  return item;
}

function showPreview(box, preview) {
  const unit = preview.unit;
  const list = document.createElement("ul");
  list.className = "preview-steps";
  list.append(line(`${preview.before_filters} ${unit} before filters`));
  for (const step of preview.steps) {
    const name = (FILTER_NAMES[step.filter] || step.filter).replace("{}", step.value);
    list.append(line(`${name}: −${step.removed} → ${step.remaining}`, step.removed ? "removes" : ""));
  }
  const total = document.createElement("p");
  total.className = "preview-total";
  total.textContent = `The download will hold ${preview.rows} ${unit} from ${preview.prompts} prompts.`;
  box.replaceChildren(list, total);
}

async function refresh() {
  const form = exportForm();
  if (!form) return;
  const box = document.getElementById("export-preview");
  const asked = ++latest;
  const url = `${form.dataset.previewUrl}?${query(form)}`;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (asked !== latest) return; // an answer to older options
    const body = await response.json();
    if (response.ok) {
      showErrors(form, {});
      showPreview(box, body);
    } else {
      const errors = body.errors && !Array.isArray(body.errors) ? body.errors : { form: body.detail };
      showErrors(form, errors);
      const note = document.createElement("p");
      note.className = "error";
      note.textContent = response.status === 422 ? "Fix the marked fields to see what the export holds." : body.detail;
      box.replaceChildren(note);
    }
  } catch (error) {
    box.textContent = `No preview: ${error.message}`;
  }
}

function schedule(event) {
  if (!event.target.closest || !event.target.closest("#export-form")) return;
  clearTimeout(timer);
  timer = setTimeout(refresh, 250);
}

document.addEventListener("input", schedule);
document.addEventListener("change", schedule);
if (exportForm()) refresh();
