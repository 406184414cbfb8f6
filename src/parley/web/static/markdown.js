// A safe renderer for Parley's Markdown subset: **bold**, *italic* / _italic_, ~~strike~~,
// `inline code`, ```code blocks```, [links](https://…) and bare http(s) / mailto links,
// and @mentions.
//
// Safety model: the input is never parsed as HTML. It is split into tokens, and every piece
// of user text becomes a DOM text node (createTextNode — that is the escaping step); the
// formatting is made of elements this module creates itself (strong, em, del, code, pre, a,
// span, br). The only attribute that carries user input is a link's href, and only after
// URL parsing proves it is http:, https: or mailto:. Anything that does not qualify is shown
// as the literal text the user typed.

const MAX_DEPTH = 4;
const ALLOWED_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

// Each inline rule: a global regex; `kind` decides what the match becomes. Order breaks ties
// when two rules match at the same position (code first: nothing is formatted inside it).
const RULES = [
  { kind: "code", re: /`([^`\n]+)`/g },
  { kind: "link", re: /\[([^[\]\n]{1,1000})\]\(\s*([^()\s]{1,2048})\s*\)/g },
  { kind: "autolink", re: /(?<![\w@/])(?:https?:\/\/|mailto:)[^\s<>"`]+/gi },
  { kind: "strong", re: /\*\*(?=\S)([^\n]*?\S)\*\*/g },
  { kind: "strong", re: /(?<![\p{L}\p{N}_])__(?=\S)([^\n]*?\S)__(?![\p{L}\p{N}_])/gu },
  { kind: "del", re: /~~(?=\S)([^\n]*?\S)~~/g },
  { kind: "em", re: /(?<![\p{L}\p{N}*])\*(?=[^\s*])([^\n*]*?[^\s*])\*(?![\p{L}\p{N}*])/gu },
  // "\_" never opens: ¯\_(ツ)_/¯ (the /shrug built-in) stays a shrug.
  { kind: "em", re: /(?<![\p{L}\p{N}_\\])_(?=[^\s_])([^\n_]*?[^\s_])_(?![\p{L}\p{N}_])/gu },
  { kind: "mention", re: /(?<![\w@])@([A-Za-z0-9_.-]{3,32})/g },
];

const FENCE = /```([^\n`]*)\n?([\s\S]*?)```/g;

/** A safe href for `raw`, or null. Only absolute http(s) and mailto URLs pass. */
export function safeUrl(raw) {
  const text = String(raw).trim();
  if (!text || /[\u0000-\u0020\u007f-\u009f\\]/.test(text)) return null;
  if (!/^(?:https?:\/\/|mailto:)/i.test(text)) return null;
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) return null;
  if (url.protocol !== "mailto:" && !url.hostname) return null;
  return url.href;
}

/**
 * Render `text` into a DocumentFragment.
 * options.users: Map username(lower-case) → user, to title mentions with display names.
 * options.me: the viewer's username (lower-case), to highlight mentions of them.
 */
export function renderMarkdown(text, options = {}) {
  const fragment = document.createDocumentFragment();
  const source = String(text ?? "");
  let last = 0;
  FENCE.lastIndex = 0;
  for (let m = FENCE.exec(source); m; m = FENCE.exec(source)) {
    appendInline(fragment, trimBlockEdges(source.slice(last, m.index)), options);
    const pre = document.createElement("pre");
    const code = document.createElement("code");
    const lang = m[1].trim();
    // "```js" on its own line names a language; "```some code```" on one line is all code.
    const body = m[0].includes("\n") ? m[2].replace(/\n$/, "") : m[1] + m[2];
    if (lang && m[0].includes("\n") && /^[\w+#.-]{1,20}$/.test(lang)) code.dataset.lang = lang;
    code.textContent = body;
    pre.append(code);
    fragment.append(pre);
    last = m.index + m[0].length;
  }
  appendInline(fragment, trimBlockEdges(source.slice(last)), options);
  return fragment;
}

function trimBlockEdges(segment) {
  // The newline right before or after a code block is the block's own line break.
  return segment.replace(/^\n/, "").replace(/\n$/, "");
}

function appendInline(parent, text, options, depth = 0, inLink = false) {
  if (!text) return;
  if (depth > MAX_DEPTH) {
    appendText(parent, text);
    return;
  }
  const next = RULES.map(() => null); // cached next match per rule
  let pos = 0;
  while (pos < text.length) {
    let best = null;
    let bestRule = -1;
    for (let i = 0; i < RULES.length; i++) {
      const rule = RULES[i];
      if (inLink && (rule.kind === "link" || rule.kind === "autolink")) continue;
      let found = next[i];
      if (found === null || (found !== false && found.index < pos)) {
        rule.re.lastIndex = pos;
        found = rule.re.exec(text) || false;
        next[i] = found;
      }
      if (found && (best === null || found.index < best.index)) {
        best = found;
        bestRule = i;
      }
    }
    if (!best) break;
    appendText(parent, text.slice(pos, best.index));
    const consumed = appendToken(parent, RULES[bestRule].kind, best, options, depth, inLink);
    pos = best.index + consumed;
  }
  appendText(parent, text.slice(pos));
}

/** Append the element for one match; returns how many characters of the match it used. */
function appendToken(parent, kind, match, options, depth, inLink) {
  const whole = match[0];
  switch (kind) {
    case "code": {
      const code = document.createElement("code");
      code.textContent = match[1];
      parent.append(code);
      return whole.length;
    }
    case "strong":
    case "em":
    case "del": {
      const el = document.createElement(kind);
      appendInline(el, match[1], options, depth + 1, inLink);
      parent.append(el);
      return whole.length;
    }
    case "link": {
      const href = safeUrl(match[2]);
      if (!href) {
        appendText(parent, whole); // not a safe link: shown exactly as typed
        return whole.length;
      }
      const a = link(href);
      appendInline(a, match[1], options, depth + 1, true);
      if (a.textContent.trim() !== href) a.title = href;
      parent.append(a);
      return whole.length;
    }
    case "autolink": {
      const raw = trimUrlTail(whole);
      const href = safeUrl(raw);
      if (!href) {
        appendText(parent, raw);
        return raw.length;
      }
      const a = link(href);
      a.textContent = raw;
      parent.append(a);
      return raw.length;
    }
    case "mention": {
      const name = match[1].replace(/[.-]+$/, "");
      if (name.length < 3) {
        appendText(parent, whole);
        return whole.length;
      }
      const key = name.toLowerCase();
      const span = document.createElement("span");
      span.className = key === options.me ? "mention mention-me" : "mention";
      span.textContent = "@" + name;
      const user = options.users?.get(key);
      if (user) span.title = user.display_name || user.username;
      span.dataset.username = key;
      parent.append(span);
      return 1 + name.length;
    }
    default:
      appendText(parent, whole);
      return whole.length;
  }
}

function link(href) {
  const a = document.createElement("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow ugc";
  return a;
}

function trimUrlTail(url) {
  let end = url.length;
  while (end > 0) {
    const ch = url[end - 1];
    if (".,;:!?'\"*_~".includes(ch)) end--;
    else if (ch === ")" && !url.slice(0, end).includes("(")) end--;
    else if (ch === "]" && !url.slice(0, end).includes("[")) end--;
    else break;
  }
  return url.slice(0, end);
}

function appendText(parent, text) {
  if (!text) return;
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    if (index > 0) parent.append(document.createElement("br"));
    if (line) parent.append(document.createTextNode(line));
  });
}

/** Plain text for previews and notifications: the markup removed, whitespace collapsed. */
export function plainText(text) {
  return String(text ?? "")
    .replace(/```[^\n`]*\n?([\s\S]*?)```/g, "$1")
    .replace(/\[([^[\]\n]+)\]\(\s*[^()\s]+\s*\)/g, "$1")
    .replace(/(\*\*|__|~~|`)/g, "")
    .replace(/(^|\s)[*_](\S[^*_\n]*?\S|\S)[*_](?=\s|$|[.,!?])/g, "$1$2")
    .replace(/\s+/g, " ")
    .trim();
}

const EMOJI_ONLY = /^(?:\p{Extended_Pictographic}(?:\uFE0F|\p{Emoji_Modifier}|\u200D\p{Extended_Pictographic}\uFE0F?)*|\p{Regional_Indicator}{2}|\s)+$/u;

/** True for short all-emoji messages, shown larger (1 to 3 emoji). */
export function isJumbo(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed || trimmed.length > 40 || !EMOJI_ONLY.test(trimmed)) return false;
  const count = trimmed.match(/\p{Extended_Pictographic}|\p{Regional_Indicator}{2}/gu)?.length ?? 0;
  return count > 0 && count <= 3;
}

/** Wrap the selection of a textarea in `marker` (bold, italic, code...), or unwrap it. */
export function toggleWrap(textarea, marker) {
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  const selected = value.slice(start, end);
  const before = value.slice(Math.max(0, start - marker.length), start);
  const after = value.slice(end, end + marker.length);
  if (before === marker && after === marker) {
    textarea.setRangeText(selected, start - marker.length, end + marker.length, "select");
  } else {
    textarea.setRangeText(marker + selected + marker, start, end, "select");
    textarea.setSelectionRange(start + marker.length, end + marker.length);
  }
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
  textarea.focus();
}
