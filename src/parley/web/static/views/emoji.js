// The reaction picker: the shared emoji picker (views/emoji_picker.js), labelled for
// reactions. Recently used reactions and emoji typed in the composer share one list.

import { openEmojiPicker as openPicker } from "./emoji_picker.js";

export function openEmojiPicker(anchor, onPick) {
  return openPicker(anchor, onPick, { label: "Choose a reaction", actionLabel: "React with" });
}
