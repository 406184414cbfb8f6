// Web Push on this device (DESIGN §6.2): the service worker, the permission, and the
// subscription the server pushes to. The worker (sw.js) shows the notifications; clicking
// one opens the message's link here (a "parley.open" message) or in a new window.

import { api } from "./api.js";
import { navigate } from "./router.js";

const WORKER_URL = "/sw.js";
const SUBSCRIPTION_KEY = "parley.push.subscription";

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && typeof Notification !== "undefined";
}

function base64UrlBytes(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (ch) => ch.charCodeAt(0));
}

function sameKey(buffer, text) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  const b = base64UrlBytes(text);
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function remember(id) {
  try {
    if (id) localStorage.setItem(SUBSCRIPTION_KEY, id);
    else localStorage.removeItem(SUBSCRIPTION_KEY);
  } catch {
    /* private mode: the server still has it */
  }
}

function remembered() {
  try {
    return localStorage.getItem(SUBSCRIPTION_KEY);
  } catch {
    return null;
  }
}

/** Register the service worker (offline page, notifications); harmless to call again. */
export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    const registration = await navigator.serviceWorker.register(WORKER_URL, { scope: "/" });
    navigator.serviceWorker.addEventListener("message", onWorkerMessage);
    return registration;
  } catch {
    return null; // not over https (or localhost), or blocked: the app works without it
  }
}

function onWorkerMessage(event) {
  if (event.data?.type === "parley.open" && typeof event.data.url === "string" && event.data.url.startsWith("/")) {
    window.focus();
    navigate(event.data.url);
  } else if (event.data?.type === "parley.resubscribe") {
    syncPush().catch(() => {});
  }
}

async function currentSubscription() {
  const registration = await navigator.serviceWorker.getRegistration("/");
  return registration ? registration.pushManager.getSubscription() : null;
}

/** "unsupported" | "denied" | "on" | "off" for this device. */
export async function pushState() {
  if (!pushSupported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  if (Notification.permission !== "granted") return "off";
  return (await currentSubscription()) && remembered() ? "on" : "off";
}

/** Ask permission (once), subscribe with the server's VAPID key, and register it. */
export async function enablePush() {
  if (!pushSupported()) return "unsupported";
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return permission === "denied" ? "denied" : "off";
  await registerServiceWorker();
  const registration = await navigator.serviceWorker.ready;
  const { public_key: key } = await api.get("/push/vapid-public-key");
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
    await subscription.unsubscribe(); // made with an older server key: useless now
    subscription = null;
  }
  subscription ||= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlBytes(key) });
  const saved = await api.post("/push/subscriptions", subscription.toJSON());
  remember(saved.subscription.id);
  return "on";
}

export async function disablePush() {
  const id = remembered();
  remember(null);
  const subscription = pushSupported() ? await currentSubscription() : null;
  await subscription?.unsubscribe().catch(() => {});
  if (id) await api.delete(`/push/subscriptions/${encodeURIComponent(id)}`).catch(() => {});
  return "off";
}

/** At start, logged in: a subscription this browser holds is registered for this session
 * (after a new login, or a key change, the server must learn of it again). */
export async function syncPush() {
  if (!pushSupported() || Notification.permission !== "granted" || !remembered()) return;
  try {
    await enablePush();
  } catch {
    /* offline, or the push service is unreachable: next start */
  }
}

/** Whether the service worker shows this browser's notifications (the page then shows
 * its own only while the worker is not subscribed). */
export function pushActive() {
  return Boolean(remembered()) && pushSupported() && Notification.permission === "granted";
}
