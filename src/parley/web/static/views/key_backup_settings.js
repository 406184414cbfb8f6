// Settings → Security → Key backup (docs/e2ee.md "Key backup"): back this browser's
// conversation keys up under a recovery passphrase, and restore them in a new browser so its
// encrypted history reads again. The passphrase never leaves the browser; only it protects
// the backup, so the card says so. Once it was used here, new keys are backed up by
// themselves (e2ee/key_backup.js).

import { formatFull, h } from "../dom.js";
import { e2ee } from "../e2ee/engine.js";
import { BackupPassphraseError, current } from "../e2ee/key_backup.js";

const MIN_PASSPHRASE = 10;

function failure(error) {
  if (error instanceof BackupPassphraseError) return error.message + ".";
  if (error?.code === "BACKUP_VERSION_MISMATCH") return "Another device backed up at the same time. Try again.";
  if (error?.code === "E2EE_DISABLED") return "End-to-end encryption is off on this server.";
  return error?.message || "Something went wrong.";
}

export class KeyBackupCard {
  constructor() {
    this.status = h("p", { class: "muted key-backup-status", "aria-live": "polite" }, "Loading…");
    this.result = h("p", { class: "key-backup-result", role: "status" });
    this.error = h("p", { class: "field-error", role: "alert" });
    this.el = h("section", { class: "card key-backup", "aria-labelledby": "keybackup-title" },
      h("h2", { class: "card-title", id: "keybackup-title" }, "Key backup"),
      h("p", {}, "Encrypted conversations can only be read on devices that hold their keys. Back them up with a recovery passphrase to read your history in a new browser."),
      this.status, this.backupForm(), this.restoreForm(), this.result, this.error);
    this.refresh();
  }

  async refresh() {
    try {
      const [backup, automatic] = await Promise.all([current(), e2ee.backsUpAutomatically().catch(() => false)]);
      this.status.textContent = backup
        ? `Backed up (version ${backup.version}, ${formatFull(backup.updated_at)}).`
        : "No key backup yet.";
      if (backup && automatic) this.status.textContent += " New keys are backed up automatically from this browser.";
    } catch (error) {
      this.status.textContent = failure(error);
    }
  }

  backupForm() {
    const input = h("input", { id: "kb-passphrase", type: "password", class: "input", autocomplete: "new-password", "aria-describedby": "kb-hint" });
    const run = async (replace) => {
      this.clear();
      if (input.value.length < MIN_PASSPHRASE) {
        this.error.textContent = `Use at least ${MIN_PASSPHRASE} characters.`;
        return;
      }
      this.result.textContent = "Backing up…";
      try {
        const done = await e2ee.backUpKeys(input.value, { replace });
        input.value = "";
        this.result.textContent = `Backed up ${done.sessions} conversation key${done.sessions === 1 ? "" : "s"}.`;
        this.refresh();
      } catch (error) {
        this.result.textContent = "";
        this.error.textContent = failure(error);
        if (error instanceof BackupPassphraseError && !replace) {
          this.error.append(" ", h("button", { type: "button", class: "link-btn", onclick: () => run(true) }, "Replace it with a new backup"));
        }
      }
    };
    return h("form", { class: "key-backup-form", "aria-label": "Back up keys", onsubmit: (event) => { event.preventDefault(); run(false); } },
      h("div", { class: "field" },
        h("label", { class: "field-label", for: "kb-passphrase" }, "Recovery passphrase"), input,
        h("p", { class: "field-hint", id: "kb-hint" }, "Only this passphrase protects your backup, and Parley can't recover it: make it long and keep it safe.")),
      h("button", { type: "submit", class: "btn btn-primary" }, "Back up keys"));
  }

  restoreForm() {
    const input = h("input", { id: "kb-restore", type: "password", class: "input", autocomplete: "current-password" });
    return h("form", {
      class: "key-backup-form",
      "aria-label": "Restore keys",
      onsubmit: async (event) => {
        event.preventDefault();
        this.clear();
        this.result.textContent = "Restoring…";
        try {
          const count = await e2ee.restoreKeys(input.value);
          input.value = "";
          this.result.textContent = `Restored ${count} conversation key${count === 1 ? "" : "s"}: your encrypted history reads again.`;
          this.refresh();
        } catch (error) {
          this.result.textContent = "";
          this.error.textContent = failure(error);
        }
      },
    },
    h("div", { class: "field" }, h("label", { class: "field-label", for: "kb-restore" }, "Passphrase to restore"), input),
    h("button", { type: "submit", class: "btn" }, "Restore keys"));
  }

  clear() {
    this.error.textContent = "";
    this.result.textContent = "";
  }
}
