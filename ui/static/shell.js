// The desktop shell injects `window.__ROLLCALL__` before this page loads.
const info = window.__ROLLCALL__;
const status = document.getElementById("status");
if (info && status) {
  status.textContent = `Receiving webhooks at ${info.ingestUrl}/hooks/<platform>/<token> (Rollcall ${info.version})`;
}
