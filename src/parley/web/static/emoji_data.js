// The emoji table (emoji/data.json, vendored from emojibase-data by
// scripts/update_emoji_data.py), loaded once on first use, with search, shortcode lookup
// and the recently used list shared by the composer and the reaction picker.

const DATA_URL = new URL("./emoji/data.json", import.meta.url);
const RECENT_KEY = "parley.emoji.recent";
const OLD_RECENT_KEY = "parley.emoji.frequent"; // the first picker's list: still honoured
export const RECENT_MAX = 24;
// Until someone has used any, the "recent" row offers these.
export const DEFAULT_RECENT = ["👍", "❤️", "😂", "🎉", "👀", "🙏", "🔥", "✅", "😊", "🚀", "💯", "👏"];

let loading = null;

/**
 * The table: {groups: [name], list: [{emoji, label, group, shortcodes, keywords}],
 * byShortcode: Map(code → entry), byEmoji: Map(emoji → entry)}.
 */
export function loadEmoji() {
  if (!loading) {
    loading = fetch(DATA_URL, { credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error(`emoji data: HTTP ${response.status}`);
        return response.json();
      })
      .then(index)
      .catch((error) => {
        loading = null; // try again next time
        throw error;
      });
  }
  return loading;
}

function index(raw) {
  const list = raw.emoji.map(([emoji, label, group, shortcodes, keywords]) => ({ emoji, label, group, shortcodes, keywords }));
  const byShortcode = new Map();
  const byEmoji = new Map();
  for (const entry of list) {
    byEmoji.set(entry.emoji, entry);
    for (const code of entry.shortcodes) if (!byShortcode.has(code)) byShortcode.set(code, entry);
  }
  return { groups: raw.groups, list, byShortcode, byEmoji };
}

/**
 * Entries matching every word of `query`, best first: a shortcode equal to the query, then
 * shortcodes starting with it, then names and keywords with a word starting with each word.
 */
export function searchEmoji(table, query, limit = 80) {
  const q = query.trim().toLowerCase().replace(/^:|:$/g, "");
  if (!q) return [];
  const words = q.split(/[\s_]+/).filter(Boolean);
  const scored = [];
  for (const entry of table.list) {
    const score = rank(entry, q, words);
    if (score > 0) scored.push([score, entry]);
  }
  scored.sort((a, b) => b[0] - a[0]);
  return scored.slice(0, limit).map(([, entry]) => entry);
}

function rank(entry, q, words) {
  if (entry.shortcodes.includes(q)) return 100;
  if (entry.shortcodes.some((code) => code.startsWith(q))) return 80 - Math.min(20, shortest(entry.shortcodes, q));
  const labelWords = entry.label.toLowerCase().split(/[\s:,-]+/);
  const all = [...labelWords, ...entry.keywords, ...entry.shortcodes.flatMap((c) => c.split("_"))];
  if (!words.every((w) => all.some((k) => k.startsWith(w)))) return 0;
  return words.every((w) => labelWords.some((k) => k.startsWith(w))) ? 40 : 20;
}

function shortest(codes, q) {
  return Math.min(...codes.filter((c) => c.startsWith(q)).map((c) => c.length - q.length));
}

/** Shortcodes starting with `prefix` (`:smi` → smile, smiley, smirk…), for completion. */
export function completeShortcode(table, prefix, limit = 8) {
  const q = prefix.toLowerCase();
  const found = [];
  const seen = new Set();
  for (const [code, entry] of table.byShortcode) {
    if (code.startsWith(q) && !seen.has(entry.emoji)) {
      found.push({ code, entry });
      seen.add(entry.emoji);
    }
  }
  if (found.length < limit) {
    // Then names: ":tear" finds "face with tears of joy" too.
    for (const entry of searchEmoji(table, q, limit * 2)) {
      if (seen.has(entry.emoji) || !entry.shortcodes.length) continue;
      found.push({ code: entry.shortcodes[0], entry });
      seen.add(entry.emoji);
    }
  }
  found.sort((a, b) => (a.code === q ? -1 : b.code === q ? 1 : 0) || (a.code.startsWith(q) === b.code.startsWith(q) ? a.code.length - b.code.length : a.code.startsWith(q) ? -1 : 1));
  return found.slice(0, limit);
}

export function recentEmoji() {
  try {
    const saved = JSON.parse(localStorage.getItem(RECENT_KEY) || localStorage.getItem(OLD_RECENT_KEY) || "[]");
    return Array.isArray(saved) ? saved.filter((e) => typeof e === "string").slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

export function rememberEmoji(emoji) {
  try {
    const list = [emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    /* not remembered */
  }
}

/** What the "recent" row shows: what was used, topped up with the defaults. */
export function recentRow(count = RECENT_MAX) {
  return [...new Set([...recentEmoji(), ...DEFAULT_RECENT])].slice(0, count);
}
