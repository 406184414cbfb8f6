// The server's search rules (parley.services.search_query), for the local index of
// decrypted messages (search_index.js): the same query syntax (words, "phrases", prefix*),
// words compared without case or diacritics (FTS5 unicode61 remove_diacritics), and
// substrings — for words of 3+ characters and for text in scripts written without spaces
// (CJK, Thai, ...) or with emoji — compared without case, as the trigram indexes do.

export const MIN_QUERY_CHARS = 2;
export const MAX_QUERY_CHARS = 500;
const MAX_TERMS = 16;
const TRIGRAM_MIN_CHARS = 3;
const MIN_PREFIX_CHARS = 2;
// A word is also filed under its first 1..6 characters: longer prefixes are looked up by
// their first six and the rest checked in full (`matches`).
const PREFIX_KEY_CHARS = 6;

// parley.services.search_query._UNSEGMENTED_RANGES
const UNSEGMENTED = [
  [0x0e00, 0x0eff], [0x0f00, 0x0fff], [0x1000, 0x109f], [0x1100, 0x11ff], [0x1780, 0x17ff],
  [0x2e80, 0x2fdf], [0x3040, 0x31ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa960, 0xa97f],
  [0xac00, 0xd7ff], [0xf900, 0xfaff], [0xff66, 0xffdc], [0x1b000, 0x1b16f], [0x20000, 0x3ffff],
];
const ALNUM = /[\p{L}\p{N}]/u;
const MARK = /\p{M}/u;
const SEARCHABLE = /[\p{L}\p{N}\p{M}\p{So}\u{1F3FB}-\u{1F3FF}]/u;
const PICTOGRAPH = /[\p{So}\u{1F3FB}-\u{1F3FF}]/u;
const CONTROL = /\p{Cc}/gu;
const SPACE = /\s/u;

export function isUnsegmented(ch) {
  const code = ch.codePointAt(0);
  return UNSEGMENTED.some(([low, high]) => low <= code && code <= high);
}

/** Words (as code-point strings): a letter or digit, then letters, digits and marks. */
export function words(text) {
  const out = [];
  let current = "";
  for (const ch of text) {
    if (ALNUM.test(ch) || (current && MARK.test(ch))) current += ch;
    else if (current) {
      out.push(current);
      current = "";
    }
  }
  if (current) out.push(current);
  return out;
}

/** A word as the word index holds it: no case, no diacritics. */
export function foldWord(word) {
  return word.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase().normalize("NFC");
}

/** Text as the substring index compares it: NFC, no case. */
export function foldText(text) {
  return text.normalize("NFC").toLowerCase();
}

function trim(text) {
  const chars = Array.from(text);
  let start = 0;
  let end = chars.length;
  while (start < end && !SEARCHABLE.test(chars[start])) start++;
  while (end > start && !SEARCHABLE.test(chars[end - 1])) end--;
  while (start < end && MARK.test(chars[start])) start++;
  return chars.slice(start, end).join("");
}

function split(text) {
  const pieces = [];
  const chars = Array.from(text);
  let i = 0;
  while (i < chars.length) {
    const ch = chars[i];
    if (SPACE.test(ch)) {
      i++;
      continue;
    }
    if (ch === '"') {
      const close = chars.indexOf('"', i + 1);
      if (close < 0) {
        i++;
        continue;
      }
      const body = chars.slice(i + 1, close).join("");
      i = close + 1;
      const starred = chars[i] === "*";
      while (chars[i] === "*") i++;
      pieces.push([starred ? "prefix" : "phrase", body]);
      continue;
    }
    let end = i;
    while (end < chars.length && !SPACE.test(chars[end]) && chars[end] !== '"') end++;
    const word = chars.slice(i, end).join("");
    i = end;
    const stem = word.replace(/\*+$/, "");
    pieces.push([stem !== word ? "prefix" : "word", stem]);
  }
  return pieces;
}

/**
 * The terms of a query, as the server parses them; `[]` when nothing searchable is left.
 * Each: `{kind, text, tokens (folded words), substring (folded text or null)}`.
 */
export function parseQuery(raw) {
  const text = raw.replace(CONTROL, " ").normalize("NFC").trim();
  if (Array.from(text).length < MIN_QUERY_CHARS || text.length > MAX_QUERY_CHARS) return [];
  const terms = [];
  const seen = new Set();
  for (const [pieceKind, body] of split(text)) {
    const trimmed = trim(body);
    if (!trimmed) continue;
    const tokens = words(trimmed);
    const pictographs = PICTOGRAPH.test(trimmed);
    if (!tokens.length && !pictographs) continue;
    let kind = pieceKind;
    if (kind === "prefix" && Array.from(tokens.at(-1) || "").length < MIN_PREFIX_CHARS) kind = "word";
    const unsegmented = Array.from(trimmed).some((ch) => isUnsegmented(ch) || PICTOGRAPH.test(ch));
    const substring = (kind === "word" && Array.from(trimmed).length >= TRIGRAM_MIN_CHARS) || unsegmented;
    const key = `${kind}|${trimmed.toLowerCase()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    terms.push({ kind, text: trimmed, tokens: tokens.map(foldWord), substring: substring ? foldText(trimmed) : null });
  }
  return terms.slice(0, MAX_TERMS);
}

/** Whether the folded words contain `tokens` in a row (the last a prefix when asked). */
function inSequence(messageWords, tokens, prefix) {
  if (!tokens.length) return false;
  for (let i = 0; i + tokens.length <= messageWords.length; i++) {
    let ok = true;
    for (let j = 0; j < tokens.length && ok; j++) {
      const word = messageWords[i + j];
      ok = prefix && j === tokens.length - 1 ? word.startsWith(tokens[j]) : word === tokens[j];
    }
    if (ok) return true;
  }
  return false;
}

/** Whether a message's text matches every term (AND), as on the server. */
export function matches(text, terms) {
  if (!terms.length) return false;
  const folded = foldText(text);
  const messageWords = words(text).map(foldWord);
  return terms.every((term) => inSequence(messageWords, term.tokens, term.kind === "prefix")
    || (term.substring !== null && folded.includes(term.substring)));
}

/** Code-point [start, end) ranges of the terms in `text`, for <mark> (search.js highlighted). */
export function highlights(text, terms) {
  const chars = Array.from(text);
  const lower = chars.map((c) => foldWord(c) || c.toLowerCase());
  const ranges = [];
  for (const term of terms) {
    const needles = [term.substring, ...term.tokens].filter(Boolean).map((n) => Array.from(n));
    for (const needle of needles) {
      for (let i = 0; i + needle.length <= lower.length; i++) {
        if (needle.every((c, j) => lower[i + j] === c || foldWord(c) === lower[i + j])) {
          ranges.push({ start: i, end: i + needle.length });
          break;
        }
      }
    }
  }
  return ranges;
}

/**
 * The keys a message is filed under in the index: its folded words; "^" and the first 1 to
 * PREFIX_KEY_CHARS characters of each (so a prefix query is an exact look-up: the index
 * holds these only blinded, search_index.js, and a blind key has no order to range over);
 * and the folded trigrams of its text (substrings), "~"-prefixed — a CJK run shorter than
 * three characters is filed as itself so a two-character search still finds it. A word
 * starts with a letter or a digit, so the three kinds never meet.
 */
export function indexKeys(text) {
  const keys = new Set();
  for (const word of words(text).map(foldWord)) {
    keys.add(word);
    const chars = Array.from(word);
    for (let n = 1; n <= Math.min(PREFIX_KEY_CHARS, chars.length); n++) keys.add("^" + chars.slice(0, n).join(""));
  }
  const chars = Array.from(foldText(text));
  for (let i = 0; i + TRIGRAM_MIN_CHARS <= chars.length; i++) keys.add("~" + chars.slice(i, i + TRIGRAM_MIN_CHARS).join(""));
  for (let i = 0; i + 1 < chars.length; i++) {
    if (isUnsegmented(chars[i]) || isUnsegmented(chars[i + 1])) keys.add("~" + chars[i] + chars[i + 1]);
  }
  for (const ch of chars) if (isUnsegmented(ch) || PICTOGRAPH.test(ch)) keys.add("~" + ch);
  return [...keys];
}

/**
 * For each term, the keys (any one of them) under which every message it can match is
 * filed — the ones to read candidates from (all are then checked with `matches`): a word;
 * for a one-word prefix, its first PREFIX_KEY_CHARS characters; a substring's first
 * trigram (or its whole self when shorter).
 */
export function candidateKeys(term) {
  const alternatives = [];
  if (term.tokens.length) {
    const first = term.tokens[0];
    alternatives.push(term.kind === "prefix" && term.tokens.length === 1 ? "^" + Array.from(first).slice(0, PREFIX_KEY_CHARS).join("") : first);
  }
  if (term.substring !== null) {
    const chars = Array.from(term.substring);
    alternatives.push("~" + chars.slice(0, Math.min(TRIGRAM_MIN_CHARS, chars.length)).join(""));
  }
  return alternatives;
}
