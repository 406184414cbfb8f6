// The composer: Enter sends, Shift+Enter breaks the line, formatting buttons and Ctrl+B /
// Ctrl+I / Ctrl+E, @mention autocomplete from the members, an emoji picker and :shortcode:
// completion (views/emoji_picker.js, views/emoji_complete.js), a reply banner, a draft kept
// per conversation, typing notifications, and Up in an empty box edits your last message.
// A text starting with "/name" runs that slash command (views/slash_commands.js) instead.

import { api } from "../api.js";
import { formatBytes, h, icon, iconButton, toast } from "../dom.js";
import { plainText, toggleWrap } from "../markdown.js";
import { store } from "../store.js";
import { EmojiCompletion } from "./emoji_complete.js";
import { isCommand, SlashCompletion } from "./slash_commands.js";
import { openEmojiPicker } from "./emoji_picker.js";
import { microphoneButton, VoiceRecorder } from "./voice.js";
import { uploadEncrypted } from "../e2ee/media.js";

const DRAFT_SAVE_MS = 300;
const TYPING_IDLE_MS = 5000;
const MAX_HEIGHT_PX = 240;

export class Composer {
  /**
   * idPrefix names its elements (two composers on one page: the conversation's and a
   * thread panel's); draftKey is where its draft is kept (default: the conversation's).
   * onTyping, onEditLast and onCommand are optional.
   */
  constructor({ conversationId, placeholder, onSend, onTyping, onEditLast, onCommand, idPrefix = "", draftKey = null, label = "Send a message", sendLabel = "Send message" }) {
    this.id = conversationId;
    this.draftName = draftKey || conversationId;
    this.idPrefix = idPrefix;
    this.onSend = onSend;
    this.onCommand = onCommand;
    this.onTyping = onTyping;
    this.onEditLast = onEditLast;
    this.replyTo = null;
    this.mention = null; // {start, query, options, active}
    this.files = []; // {key, file, state: uploading|done|failed, progress, attachment, error, preview}
    this.fileList = h("div", { class: "composer-files", "aria-label": "Attachments", role: "list" });
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, tabindex: "-1", "aria-hidden": "true", onchange: () => { this.addFiles(this.fileInput.files); this.fileInput.value = ""; } });
    this.input = h("textarea", {
      id: `${idPrefix}composer-input`,
      class: "composer-input",
      rows: "1",
      placeholder,
      "aria-label": placeholder,
      "aria-autocomplete": "list",
      "aria-controls": `${idPrefix}mention-list`,
      "aria-expanded": "false",
      autocomplete: "off",
      spellcheck: "true",
      dir: "auto",
      maxlength: "10000",
    });
    this.replyBox = h("div", { class: "composer-reply", hidden: true });
    this.mentionList = h("ul", { class: "mention-list", id: `${idPrefix}mention-list`, role: "listbox", "aria-label": "People to mention", hidden: true });
    this.emoji = new EmojiCompletion(this.input, { id: `${idPrefix}emoji-complete-list` });
    this.slash = new SlashCompletion(this.input, conversationId, { id: `${idPrefix}slash-command-list` });
    const emojiButton = iconButton("smile", "Insert emoji", () => openEmojiPicker(emojiButton, (emoji) => this.insert(emoji), { label: "Insert an emoji", actionLabel: "Insert" }));
    this.sendButton = h("button", { type: "submit", class: "send-btn", "aria-label": sendLabel, title: "Send (Enter)", disabled: true }, icon("send", { size: 18 }));
    const formatting = h("div", { class: "composer-format", role: "toolbar", "aria-label": "Formatting" },
      iconButton("paperclip", "Attach files", () => this.fileInput.click()),
      emojiButton,
      microphoneButton(() => this.recordVoice()),
      iconButton("bold", "Bold (Ctrl+B)", () => toggleWrap(this.input, "**")),
      iconButton("italic", "Italic (Ctrl+I)", () => toggleWrap(this.input, "_")),
      iconButton("strike", "Strikethrough", () => toggleWrap(this.input, "~~")),
      iconButton("code", "Code (Ctrl+E)", () => toggleWrap(this.input, "`")),
    );
    this.el = h("form", { class: "composer", "aria-label": label, onsubmit: (event) => { event.preventDefault(); this.send(); } },
      this.replyBox,
      this.mentionList,
      this.emoji.el,
      this.slash.el,
      this.fileInput,
      h("div", { class: "composer-box" },
        this.fileList,
        this.input,
        h("div", { class: "composer-bar" }, formatting,
          h("span", { class: "composer-hint", "aria-hidden": "true" }, h("kbd", {}, "Enter"), " to send · ", h("kbd", {}, "Shift"), "+", h("kbd", {}, "Enter"), " for a new line"),
          this.sendButton)),
    );
    this.input.addEventListener("keydown", (event) => this._keys(event));
    this.input.addEventListener("paste", (event) => {
      const files = event.clipboardData?.files;
      if (files?.length) {
        event.preventDefault();
        this.addFiles(files);
      }
    });
    this.el.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      this.el.classList.add("is-dragging");
    });
    this.el.addEventListener("dragleave", () => this.el.classList.remove("is-dragging"));
    this.el.addEventListener("drop", (event) => {
      this.el.classList.remove("is-dragging");
      if (!event.dataTransfer?.files?.length) return;
      event.preventDefault();
      this.addFiles(event.dataTransfer.files);
    });
    this.input.addEventListener("input", () => this._input());
    this.input.addEventListener("blur", () => {
      this._stopTyping();
      setTimeout(() => {
        // The focus came back (a click in the list, a window that lost the focus for a
        // moment): the lists stay, as the text under them has not changed.
        if (document.activeElement === this.input) return;
        this._closeMentions();
        this.emoji.close();
        this.slash.close();
      }, 150);
    });
    this._loadDraft();
  }

  destroy() {
    this.recorder?.cancel();
    for (const entry of this.files) {
      entry.abort?.abort();
      if (entry.preview) URL.revokeObjectURL(entry.preview);
    }
    this._saveDraft();
    this._stopTyping();
    clearTimeout(this._draftTimer);
  }

  focus() {
    this.input.focus();
  }

  /** Put `text` at the caret (or over the selection), as if typed. */
  insert(text) {
    this.input.focus();
    this.input.setRangeText(text, this.input.selectionStart, this.input.selectionEnd, "end");
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  setPlaceholder(text) {
    if (this.input.placeholder === text) return;
    this.input.placeholder = text;
    this.input.setAttribute("aria-label", text);
  }

  setReply(message) {
    this.replyTo = message;
    this.replyBox.replaceChildren(
      icon("reply", { size: 16 }),
      h("span", { class: "composer-reply-text" }, "Replying to ", h("strong", {}, store.displayName(message.sender_id)), ": ", plainText(message.content).slice(0, 120)),
      iconButton("x", "Cancel reply", () => this.clearReply()),
    );
    this.replyBox.hidden = false;
    this.focus();
  }

  clearReply() {
    this.replyTo = null;
    this.replyBox.hidden = true;
    this.replyBox.replaceChildren();
  }

  send() {
    const content = this.input.value;
    if (this.files.some((f) => f.state === "uploading")) {
      toast("Wait for the files to finish uploading");
      return;
    }
    const attachments = this.files.filter((f) => f.state === "done").map((f) => f.attachment);
    if (!content.trim() && !attachments.length) return;
    if (this.onCommand && !attachments.length && isCommand(content)) this.onCommand(content.trim());
    else this.onSend(content, this.replyTo, attachments);
    this.input.value = "";
    this._clearFiles();
    this.clearReply();
    this._stopTyping();
    this._resize();
    this._saveDraft();
    this.sendButton.disabled = true;
    this.focus();
  }

  // --- voice messages: recorded here, uploaded and sent as an attachment

  async recordVoice() {
    if (this.recorder) return;
    const box = this.el.querySelector(".composer-box");
    const end = () => {
      this.recorder?.el.remove();
      this.recorder = null;
      this.el.classList.remove("is-recording");
      this.focus();
    };
    this.recorder = new VoiceRecorder({
      onCancel: end,
      onSend: async (file) => {
        end();
        await Promise.all(this.addFiles([file]));
        if (this.files.some((f) => f.file === file && f.state === "done")) this.send();
      },
    });
    box.prepend(this.recorder.el);
    this.el.classList.add("is-recording");
    try {
      await this.recorder.start();
    } catch (error) {
      end();
      toast(error?.name === "NotAllowedError" ? "Parley may not use the microphone: allow it in the browser's site settings." : "Couldn't start recording.", { error: true });
    }
  }

  // --- attachments: uploaded as soon as they are picked, pasted or dropped

  /** Start uploading; returns one promise per file, settled when its upload has. */
  addFiles(fileList) {
    const uploads = [];
    for (const file of fileList) {
      const entry = { key: `${Date.now()}-${Math.random()}`, file, state: "uploading", progress: 0, abort: new AbortController() };
      if (file.type.startsWith("image/")) entry.preview = URL.createObjectURL(file);
      this.files.push(entry);
      const options = { signal: entry.abort.signal, onProgress: (progress) => { entry.progress = progress; this._renderFiles(); } };
      uploads.push((store.conversations.get(this.id)?.encrypted ? sealedUpload(file, options) : api.upload(file, options)).then((attachment) => {
        entry.state = "done";
        entry.attachment = attachment;
      }).catch((error) => {
        entry.state = "failed";
        entry.error = error?.details?.[0]?.message || error?.message || "Upload failed";
      }).finally(() => {
        this._renderFiles();
        this._updateSend();
      }));
    }
    this._renderFiles();
    this._updateSend();
    this.focus();
    return uploads;
  }

  _removeFile(entry) {
    entry.abort?.abort();
    if (entry.preview) URL.revokeObjectURL(entry.preview);
    this.files = this.files.filter((f) => f !== entry);
    this._renderFiles();
    this._updateSend();
    this.focus();
  }

  _clearFiles() {
    for (const entry of this.files) if (entry.preview) URL.revokeObjectURL(entry.preview);
    this.files = [];
    this._renderFiles();
  }

  _renderFiles() {
    this.fileList.replaceChildren(...this.files.map((entry) => {
      const meta = entry.state === "uploading" ? `Uploading… ${Math.round(entry.progress * 100)}%`
        : entry.state === "failed" ? entry.error : formatBytes(entry.file.size);
      const chip = h("div", { class: ["file-chip", entry.state === "failed" && "is-failed"], role: "listitem", "aria-label": `${entry.file.name}: ${meta}` },
        entry.preview ? h("img", { class: "file-chip-thumb", src: entry.preview, alt: "" }) : h("span", { class: "file-chip-icon" }, icon("file", { size: 16 })),
        h("span", { class: "file-chip-text" }, h("span", { class: "file-chip-name" }, entry.file.name), h("span", { class: "file-chip-meta" }, meta)),
        iconButton("x", `Remove ${entry.file.name}`, () => this._removeFile(entry)));
      if (entry.state === "uploading") {
        const bar = h("span", { class: "file-chip-progress" });
        bar.style.width = `${Math.round(entry.progress * 100)}%`;
        chip.append(bar);
      }
      return chip;
    }));
  }

  _updateSend() {
    const uploading = this.files.some((f) => f.state === "uploading");
    const ready = this.files.some((f) => f.state === "done");
    this.sendButton.disabled = uploading || (!this.input.value.trim() && !ready);
  }

  // --- keys and input

  _keys(event) {
    if (this.slash.keydown(event)) return;
    if (this.emoji.keydown(event)) return;
    if (this.mention && this._mentionKeys(event)) return;
    const mod = event.ctrlKey || event.metaKey;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !mod && !event.altKey) {
      event.preventDefault();
      this.send();
    } else if (mod && !event.shiftKey && (event.key === "b" || event.key === "B")) {
      event.preventDefault();
      toggleWrap(this.input, "**");
    } else if (mod && !event.shiftKey && (event.key === "i" || event.key === "I")) {
      event.preventDefault();
      toggleWrap(this.input, "_");
    } else if (mod && !event.shiftKey && (event.key === "e" || event.key === "E")) {
      event.preventDefault();
      toggleWrap(this.input, "`");
    } else if (event.key === "ArrowUp" && !this.input.value) {
      event.preventDefault();
      this.onEditLast?.();
    } else if (event.key === "Escape" && this.replyTo) {
      event.preventDefault();
      this.clearReply();
    }
  }

  _input() {
    this._resize();
    this._updateSend();
    clearTimeout(this._draftTimer);
    this._draftTimer = setTimeout(() => this._saveDraft(), DRAFT_SAVE_MS);
    if (this.input.value.trim()) {
      this.onTyping?.(true);
      clearTimeout(this._typingTimer);
      this._typingTimer = setTimeout(() => this._stopTyping(), TYPING_IDLE_MS);
    } else {
      this._stopTyping();
    }
    this._updateMentions();
    this.emoji.update();
    this.slash.update();
  }

  _stopTyping() {
    clearTimeout(this._typingTimer);
    this.onTyping?.(false);
  }

  _resize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  // --- drafts (per user and conversation, in localStorage)

  _draftKey() {
    return `parley.draft.${store.me.id}.${this.draftName}`;
  }

  _loadDraft() {
    try {
      const draft = localStorage.getItem(this._draftKey());
      if (draft) {
        this.input.value = draft;
        this.sendButton.disabled = !draft.trim();
        requestAnimationFrame(() => this._resize());
      }
    } catch {
      /* no storage */
    }
  }

  _saveDraft() {
    try {
      if (this.input.value.trim()) localStorage.setItem(this._draftKey(), this.input.value);
      else localStorage.removeItem(this._draftKey());
    } catch {
      /* no storage */
    }
    store.emit("drafts");
  }

  // --- @mention autocomplete

  _updateMentions() {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret);
    const match = /(^|[^\w@])@([A-Za-z0-9_.-]{0,32})$/.exec(before);
    if (!match) {
      this._closeMentions();
      return;
    }
    const query = match[2].toLowerCase();
    const members = [...(store.members.get(this.id)?.values() || [])].filter((m) => m.user_id !== store.me.id);
    const options = members
      .filter((m) => m.username.startsWith(query) || (m.display_name || "").toLowerCase().split(/\s+/).some((w) => w.startsWith(query)))
      .sort((a, b) => a.username.localeCompare(b.username))
      .slice(0, 8);
    if (!options.length) {
      this._closeMentions();
      return;
    }
    this.mention = { start: caret - match[2].length - 1, options, active: 0 };
    this._renderMentions();
  }

  _renderMentions() {
    const { options, active } = this.mention;
    this.mentionList.replaceChildren(...options.map((m, i) => h("li", {
      role: "option",
      id: `${this.idPrefix}mention-${i}`,
      class: ["mention-option", i === active && "is-active"],
      "aria-selected": i === active ? "true" : "false",
      onmousedown: (event) => {
        event.preventDefault();
        this._chooseMention(i);
      },
    }, h("span", { class: "mention-name" }, m.display_name || m.username), h("span", { class: "mention-handle" }, "@" + m.username))));
    this.mentionList.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.idPrefix}mention-${active}`);
  }

  _mentionKeys(event) {
    const count = this.mention.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      this.mention.active = (this.mention.active + (event.key === "ArrowDown" ? 1 : -1) + count) % count;
      this._renderMentions();
      return true;
    }
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      this._chooseMention(this.mention.active);
      return true;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      this._closeMentions();
      return true;
    }
    return false;
  }

  _chooseMention(index) {
    const member = this.mention.options[index];
    const { start } = this.mention;
    const end = this.input.selectionStart;
    this.input.setRangeText(`@${member.username} `, start, end, "end");
    this._closeMentions();
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
  }

  _closeMentions() {
    this.mention = null;
    this.mentionList.hidden = true;
    this.mentionList.replaceChildren();
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }
}

/**
 * In an end-to-end encrypted conversation a file is sealed here before it is uploaded
 * (e2ee/media.js): what the composer holds is the server's attachment under the file's own
 * name (the server only knows "encrypted.bin"), its description with the key (`e2ee`, sent
 * inside the ciphertext) and the ids to attach (the file and its thumbnail).
 */
async function sealedUpload(file, options) {
  const { attachment, ids, description } = await uploadEncrypted(file, options);
  return { ...attachment, kind: "file", url: undefined, name: description.name, size: description.size, e2ee: description, e2ee_ids: ids };
}
