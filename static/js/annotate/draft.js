// Drafts: the unsaved state of the task on screen, kept in localStorage so that a reload (or a crash) does not
// lose it. Keyed by user, mode (label / revise) and task id; removed once the task is submitted or skipped, and
// after a week if the task never came back (its lease ran out). The state has the shape of the submit body.
const PREFIX = "preflab:draft:";
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export function draftStore(root) {
  const key = `${PREFIX}${root.dataset.user}:${root.dataset.mode}:${root.dataset.taskId}`;
  return {
    load() {
      try {
        const draft = JSON.parse(localStorage.getItem(key) || "null");
        return draft && draft.version === 1 ? draft : null;
      } catch { return null; } // storage disabled, or not ours
    },
    save(state) {
      try { localStorage.setItem(key, JSON.stringify({ version: 1, savedAt: Date.now(), state })); } catch { /* full or disabled */ }
    },
    clear() {
      try { localStorage.removeItem(key); } catch { /* disabled */ }
    },
  };
}

export function pruneDrafts(now = Date.now()) {
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(PREFIX)) continue;
      let savedAt = 0;
      try { savedAt = JSON.parse(localStorage.getItem(key)).savedAt || 0; } catch { /* broken: dropped */ }
      if (now - savedAt > MAX_AGE_MS) localStorage.removeItem(key);
    }
  } catch { /* storage disabled */ }
}
