// Parley's web client: boot (restore the session from the refresh cookie), the shell
// (sidebar + main pane + connection banner), routing between views, global shortcuts.

import { api } from "./api.js";
import { h, icon, setAvatarSource, toast } from "./dom.js";
import { setPageTitle, startNotifications } from "./notify.js";
import { startNotificationPrefs } from "./notify-prefs.js";
import { registerServiceWorker, syncPush } from "./push.js";
import { e2ee } from "./e2ee/engine.js";
import * as searchIndex from "./e2ee/search_index.js";
import { conversationPath, navigate, startRouter } from "./router.js";
import { store } from "./store.js";
import { startSync, stopSync } from "./sync/session.js";
import { renderAuth } from "./views/auth.js";
import { AdminView } from "./views/admin.js";
import { renderForgotPassword, renderResetPassword } from "./views/auth_recovery.js";
import { ConnectionBanner } from "./views/banner.js";
import { logo } from "./views/brand.js";
import { ContactsView, refreshIncomingRequests } from "./views/contacts.js";
import { ConversationView, noAccess } from "./views/conversation.js";
import { confirmDialog, newDirectDialog, newGroupDialog } from "./views/dialogs.js";
import { closePopover } from "./views/popover.js";
import { SearchView } from "./views/search.js";
import { DirectoryView } from "./views/directory.js";
import { InviteView } from "./views/invite.js";
import { ThreadsView } from "./views/threads.js";
import { applyTheme, SettingsView } from "./views/settings.js";
import { Sidebar } from "./views/sidebar.js";

const root = document.getElementById("app");
const NEXT_KEY = "parley.next";
const REPORT_OUTCOMES = {
  dismissed: "A moderator reviewed your report and took no action.",
  message_deleted: "A moderator deleted the message you reported.",
  sender_deactivated: "A moderator deactivated the account of the message you reported.",
};
let shell = null;
let view = null;
let stopNotifications = null;
let offContacts = null;

applyTheme();
setAvatarSource((id) => (id && id === store.me?.id ? store.me.avatar : store.users.get(id)?.avatar) || null);

async function boot() {
  api.onAuthLost = () => loggedOut({ reason: "Your session has ended. Please log in again." });
  let me = null;
  try {
    me = await api.restore();
  } catch {
    renderBootError();
    return;
  }
  if (me) await enter(me);
  startRouter(route);
  root.removeAttribute("aria-busy");
}

async function enter(me) {
  try {
    await startSync(me);
  } catch {
    /* conversations load again when the socket is ready or the poll runs */
  }
  // This browser's E2EE device (docs/e2ee.md): in the background; refused when the server
  // has E2EE off, and tried again at the next start.
  e2ee.onDecrypted = (message) => {
    store.emit(`timeline:${message.conversation_id}`, { change: "updated", message });
    store.emit("conversations");
  };
  e2ee.start(me).catch(() => {});
  const stopPage = startNotifications();
  const stopPrefs = startNotificationPrefs();
  stopNotifications = () => { stopPage(); stopPrefs(); };
  registerServiceWorker().then(() => syncPush());
  const offContactsTopic = store.on("contacts", () => refreshIncomingRequests());
  const offReports = store.on("report.resolved", ({ report }) => toast(REPORT_OUTCOMES[report.resolution] || "Your report was reviewed."));
  offContacts = () => { offContactsTopic(); offReports(); };
  refreshIncomingRequests();
}

async function onLoggedIn(user) {
  await enter(user);
  let next = "/";
  try {
    next = sessionStorage.getItem(NEXT_KEY) || "/";
    sessionStorage.removeItem(NEXT_KEY);
  } catch {
    /* default */
  }
  navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
}

function route(r) {
  closePopover();
  if (r.name === "reset-password") {
    // A reset link works whoever is logged in here: it is about the link's account.
    teardownShell();
    renderResetPassword(root, r.token);
    return;
  }
  if (!store.me) {
    teardownShell();
    if (r.name === "register") {
      renderAuth(root, "register", onLoggedIn, { invite: r.invite });
      return;
    }
    if (r.name === "forgot-password") {
      renderForgotPassword(root);
      return;
    }
    if (r.name !== "login") {
      try {
        sessionStorage.setItem(NEXT_KEY, location.pathname + location.search);
      } catch {
        /* the deep link is lost, not the login */
      }
      history.replaceState({}, "", "/login");
    }
    renderAuth(root, "login", onLoggedIn);
    return;
  }
  if (r.name === "login" || r.name === "register" || r.name === "forgot-password") {
    navigate("/", { replace: true });
    return;
  }
  if (!shell) buildShell();
  show(r);
}

function buildShell() {
  const sidebar = new Sidebar({ onLogout: () => logout() });
  const banner = new ConnectionBanner();
  const content = h("div", { class: "main-content" });
  const main = h("main", { class: "main", id: "main", "aria-label": "Main" }, banner.el, content);
  const layout = h("div", { class: "layout" },
    h("a", { class: "skip-link", href: "#main" }, "Skip to the conversation"),
    sidebar.el, main);
  root.replaceChildren(layout);
  shell = { layout, sidebar, banner, content };
}

function teardownShell() {
  view?.destroy?.();
  view = null;
  if (!shell) return;
  shell.sidebar.destroy();
  shell.banner.destroy();
  shell = null;
}

function setView(next, { main = true } = {}) {
  view?.destroy?.();
  view = next;
  shell.content.replaceChildren(next.el);
  shell.layout.classList.toggle("show-main", main);
  next.mount?.();
}

function show(r) {
  if (r.name === "conversation") {
    shell.sidebar.setActive(r.id);
    shell.layout.classList.add("show-main");
    if (view instanceof ConversationView && view.id === r.id && !view.destroyed) {
      view.showMessage(r.messageId || null);
      if (r.thread) view.openThread(r.thread);
      return;
    }
    const conversationView = new ConversationView(r.id);
    setView(conversationView);
    conversationView.open(r.messageId || null).then(() => {
      if (r.thread && !conversationView.destroyed) conversationView.openThread(r.thread);
    });
    return;
  }
  shell.sidebar.setActive(null);
  switch (r.name) {
    case "home":
      setView(homeView(), { main: false });
      break;
    case "slug":
      openSlug(r.slug);
      break;
    case "contacts":
      setView(new ContactsView());
      break;
    case "settings":
      setView(new SettingsView({ onLoggedOut: (callServer) => logout(callServer) }));
      break;
    case "search":
      setView(new SearchView(r.query));
      break;
    case "admin":
      setView(new AdminView(r.section));
      break;
    case "threads":
      setView(new ThreadsView());
      break;
    case "directory":
      setView(new DirectoryView());
      break;
    case "invite":
      setView(new InviteView(r.token));
      break;
    default:
      setPageTitle("Not found");
      setView({ el: h("div", { class: "center-state" },
        h("h2", { class: "center-title" }, "There's nothing here"),
        h("p", { class: "muted" }, "The link may be wrong or out of date."),
        h("a", { class: "btn btn-primary", href: "/", "data-route": "" }, "Back to your conversations")) });
  }
}

async function openSlug(slug) {
  const placeholder = { el: h("div", { class: "center-state" }, h("span", { class: "spinner" })) };
  setView(placeholder);
  try {
    const conversation = await api.conversationBySlug(slug);
    store.upsertConversation(conversation);
    if (view === placeholder) navigate(conversationPath(conversation.id), { replace: true });
  } catch {
    if (view === placeholder) {
      setPageTitle("No access");
      setView({ el: noAccess() });
    }
  }
}

function homeView() {
  setPageTitle(null);
  const me = store.me;
  return {
    el: h("div", { class: "home" },
      h("div", { class: "home-card" },
        logo(56),
        h("h1", { class: "home-title" }, `Welcome, ${me.display_name || me.username}`),
        h("p", { class: "muted" }, "Pick a conversation on the left, or start a new one."),
        h("div", { class: "home-actions" },
          h("button", { type: "button", class: "btn btn-primary", onclick: () => newDirectDialog() }, icon("message", { size: 16 }), " New message"),
          h("button", { type: "button", class: "btn", onclick: () => newGroupDialog() }, icon("users", { size: 16 }), " New group")),
        h("ul", { class: "home-tips" },
          h("li", {}, h("kbd", {}, "Ctrl"), " + ", h("kbd", {}, "K"), " search messages"),
          h("li", {}, h("kbd", {}, "Alt"), " + ", h("kbd", {}, "↑"), " / ", h("kbd", {}, "↓"), " switch conversations"),
          h("li", {}, h("kbd", {}, "↑"), " in an empty message box edits your last message")))),
  };
}

async function logout(callServer = true) {
  if (callServer && e2ee.deviceId) {
    // Logging out removes this browser's E2EE device (docs/e2ee.md): warn first.
    const ok = await confirmDialog({
      title: "Log out of this browser?",
      message: "This browser's encryption keys are deleted when you log out. Encrypted messages you have not backed up (Settings → Security → Key backup) can't be read here again.",
      confirmLabel: "Log out",
      danger: true,
    });
    if (!ok) return;
    try {
      await e2ee.removeDevice();
    } catch {
      /* the session ends anyway: logging it out takes the device off every list */
    }
  }
  try {
    if (callServer) await api.logout();
  } catch {
    /* the session is ended locally either way */
  }
  loggedOut({});
}

function loggedOut({ reason } = {}) {
  // The server signing an account out reaches the page twice (the socket's refresh fails,
  // then the answer of the call that signed it out comes): the second time, the login
  // page is already drawn and may hold what the user has started typing.
  if (!store.me && !shell) {
    api.accessToken = null;
    return;
  }
  const userId = store.me?.id;
  // A dialog of the old session (the one that signed it out, say) must not stay over the
  // login page: a modal makes the page under it inert.
  closePopover();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  stopSync();
  e2ee.stop();
  stopNotifications?.();
  offContacts?.();
  teardownShell();
  forgetLocalData(userId);
  store.reset();
  api.accessToken = null;
  navigate("/login", { replace: true });
  if (reason) {
    const note = h("p", { class: "form-notice", role: "status" }, reason);
    root.querySelector(".auth-form")?.prepend(note);
  }
}

/** Drafts and the outbox hold message text: a shared computer must not keep them. */
function forgetLocalData(userId) {
  if (!userId) return;
  searchIndex.forget(userId).catch(() => {}); // decrypted text, like drafts
  try {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(`parley.draft.${userId}.`) || key === `parley.outbox.${userId}`) localStorage.removeItem(key);
    }
  } catch {
    /* nothing stored */
  }
}

function renderBootError() {
  root.removeAttribute("aria-busy");
  root.replaceChildren(h("main", { class: "auth-page" },
    h("div", { class: "auth-card", role: "alert" },
      h("div", { class: "auth-brand" }, logo(40), h("span", { class: "brand-name" }, "Parley")),
      h("h1", { class: "auth-title" }, "Can't reach the server"),
      h("p", { class: "auth-subtitle" }, "Check your connection. Parley will try again when you retry."),
      h("button", { type: "button", class: "btn btn-primary btn-block", onclick: () => location.reload() }, "Retry"))));
}

document.addEventListener("keydown", (event) => {
  if (!store.me || !shell) return;
  const mod = event.ctrlKey || event.metaKey;
  if (mod && !event.shiftKey && !event.altKey && (event.key === "k" || event.key === "K")) {
    event.preventDefault();
    navigate("/search");
  } else if (event.altKey && !mod && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    shell.sidebar.step(event.key === "ArrowUp" ? -1 : 1);
  }
});

boot();
