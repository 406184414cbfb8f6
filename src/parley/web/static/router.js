// Client-side routing over the History API. The server answers every page URL with the
// same index.html (parley/api/web.py); this module turns the path into a route object.
//
//   /                         home            /c/{id}            conversation
//   /login, /register         auth            /c/{id}/m/{msg}    conversation at a message
//   /contacts, /settings      pages           /g/{slug}          group by slug
//   /search?q=...             search
//   /forgot-password, /reset-password?token=   password reset (no login needed)
//   /admin, /admin/{section}  site administration (staff)
//   /search?q=...             search          /threads           followed threads
//   /directory                public groups   /invite/{token}    join by invite link
//   /c/{id}?thread={root}     conversation with a thread open beside it

let listener = () => {};

export function parseRoute(pathname = location.pathname, search = location.search) {
  const parts = pathname.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const query = Object.fromEntries(new URLSearchParams(search));
  if (parts.length === 0) return { name: "home" };
  const [head, a, b, c] = parts;
  if (head === "login" && parts.length === 1) return { name: "login" };
  if (head === "register" && parts.length === 1) return { name: "register", invite: query.invite || "" };
  if (head === "contacts" && parts.length === 1) return { name: "contacts" };
  if (head === "forgot-password" && parts.length === 1) return { name: "forgot-password" };
  if (head === "reset-password" && parts.length === 1) return { name: "reset-password", token: query.token || "" };
  if (head === "admin" && parts.length <= 2) return { name: "admin", section: a || "users" };
  if (head === "settings" && parts.length <= 2) return { name: "settings", section: a || "profile" };
  if (head === "search" && parts.length === 1) return { name: "search", query };
  if (head === "threads" && parts.length === 1) return { name: "threads" };
  if (head === "directory" && parts.length === 1) return { name: "directory" };
  if (head === "invite" && a && parts.length === 2) return { name: "invite", token: a };
  if (head === "c" && a && parts.length === 2) return { name: "conversation", id: a, thread: query.thread || null };
  if (head === "c" && a && b === "m" && c && parts.length === 4) return { name: "conversation", id: a, messageId: c };
  if (head === "g" && a && parts.length === 2) return { name: "slug", slug: a };
  return { name: "not-found" };
}

export function threadPath(conversationId, rootId) {
  return `${conversationPath(conversationId)}?thread=${encodeURIComponent(rootId)}`;
}

export function conversationPath(id, messageId) {
  const base = `/c/${encodeURIComponent(id)}`;
  return messageId ? `${base}/m/${encodeURIComponent(messageId)}` : base;
}

export function messageUrl(conversationId, messageId) {
  return location.origin + conversationPath(conversationId, messageId);
}

export function currentRoute() {
  return parseRoute();
}

export function navigate(path, { replace = false } = {}) {
  const target = new URL(path, location.origin);
  const same = target.pathname + target.search === location.pathname + location.search;
  if (replace || same) history.replaceState({}, "", target);
  else history.pushState({}, "", target);
  listener(parseRoute(target.pathname, target.search));
}

export function startRouter(onRoute) {
  listener = onRoute;
  window.addEventListener("popstate", () => listener(parseRoute()));
  // Plain links inside the app navigate without reloading.
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest?.("a[data-route]");
    if (!link || link.target === "_blank") return;
    const url = new URL(link.href, location.origin);
    if (url.origin !== location.origin) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  listener(parseRoute());
}
