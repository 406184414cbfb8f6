// Parley's service worker (served at /sw.js, scope /): Web Push notifications, their
// clicks, and an offline page instead of the browser's error page.
//
// A push carries JSON made by the server (parley/notifications/push_delivery.py): title,
// body, url (the message's deep link) and tag ("conversation:<id>"), so a conversation
// has one notification that each push replaces rather than a stack. When a Parley tab is
// open it has already shown its own notification (same tag): the push replaces it silently.

const SHELL_CACHE = "parley-shell-v1";
const OFFLINE_URL = "/offline";
const SHELL = [OFFLINE_URL, "/static/pages.css", "/static/icon.svg", "/static/icons/icon-192.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== SHELL_CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.mode === "navigate") {
    // Pages come from the network (never stale); without one, the offline page.
    event.respondWith(fetch(request).catch(async () => (await caches.match(OFFLINE_URL)) || Response.error()));
  } else if (request.method === "GET" && SHELL.includes(new URL(request.url).pathname)) {
    event.respondWith(fetch(request).catch(async () => (await caches.match(request)) || Response.error()));
  }
});

function readPush(event) {
  try {
    return event.data ? event.data.json() : {};
  } catch {
    return { body: event.data ? event.data.text() : "" };
  }
}

self.addEventListener("push", (event) => {
  const data = readPush(event);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const quiet = windows.length > 0;
    await self.registration.showNotification(data.title || "Parley", {
      body: data.body || "New message",
      tag: data.tag || "parley",
      renotify: !quiet,
      silent: quiet,
      icon: "/static/icons/icon-192.png",
      badge: "/static/icons/badge-96.png",
      timestamp: Date.parse(data.sent_at) || Date.now(),
      data: { url: data.url || "/", conversationId: data.conversation_id, messageId: data.message_id },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || "/", self.location.origin);
  if (url.origin !== self.location.origin) return; // only ever our own pages
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const open = windows.find((w) => new URL(w.url).origin === url.origin);
    if (open) {
      open.postMessage({ type: "parley.open", url: url.pathname });
      return open.focus();
    }
    return self.clients.openWindow(url.href);
  })());
});

self.addEventListener("pushsubscriptionchange", (event) => {
  // The page re-registers the subscription at its next start (push.js syncPush); tell
  // any open page to do it now.
  event.waitUntil((async () => {
    for (const client of await self.clients.matchAll({ type: "window" })) client.postMessage({ type: "parley.resubscribe" });
  })());
});
