// The profile picture in Settings: the current avatar with "Change picture" (any JPEG,
// PNG, GIF or WebP; the server crops it square) and "Remove".

import { api } from "../api.js";
import { avatar, h, toast } from "../dom.js";
import { store } from "../store.js";

export function profilePicture() {
  const holder = h("div", { class: "profile-picture" });
  const input = h("input", { type: "file", accept: "image/jpeg,image/png,image/gif,image/webp", class: "sr-only", id: "avatar-file" });
  const change = h("label", { class: "btn btn-small", for: "avatar-file" }, "Change picture");
  const remove = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Remove");

  function render() {
    const me = store.me;
    remove.hidden = !me.avatar;
    holder.replaceChildren(avatar(me.id, me.display_name || me.username, { size: "lg" }),
      h("div", { class: "profile-picture-actions" }, change, remove), input);
  }

  input.addEventListener("change", async () => {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    change.classList.add("is-busy");
    try {
      store.setMe({ ...store.me, ...(await api.setAvatar(file)) });
      toast("Picture updated");
    } catch (error) {
      toast(error.message || "Couldn't use that picture", { error: true });
    } finally {
      change.classList.remove("is-busy");
      render();
    }
  });
  remove.addEventListener("click", async () => {
    try {
      store.setMe({ ...store.me, ...(await api.removeAvatar()) });
    } catch (error) {
      toast(error.message, { error: true });
    }
    render();
  });
  render();
  return holder;
}
