// underdog studio: live panels. An element with data-live="/some/stream" shows the HTML each server-sent event
// carries (rendered and escaped by the server); the stream is closed once a panel says it is final.
"use strict";
document.querySelectorAll("[data-live]").forEach((panel) => {
  if (panel.querySelector("[data-final]")) return;  // a finished run or action: nothing will change
  const source = new EventSource(panel.dataset.live);
  source.onmessage = (event) => {
    panel.innerHTML = event.data;
    panel.dataset.updated = String(Date.now());
    if (panel.querySelector("[data-final]")) source.close();
  };
});
