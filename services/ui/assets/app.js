// Goterra web UI: small conveniences over pages that work without JavaScript.
// - [data-confirm] forms ask before submitting;
// - [data-refresh] elements reload themselves from their URL every few seconds;
// - pre[data-stream] follows a run's log over server-sent events, scrolling along;
// - time[data-relative] gets a relative time ("3 min ago") beside the absolute one;
// - select[data-reload] (application template) reloads the form page with the choice.
"use strict";

(function () {
  const REFRESH_MS = 3000;

  function relative(element) {
    const then = Date.parse(element.getAttribute("datetime"));
    if (Number.isNaN(then)) return;
    const seconds = Math.round((Date.now() - then) / 1000);
    const abs = Math.abs(seconds);
    let text;
    if (abs < 60) text = abs + " s";
    else if (abs < 3600) text = Math.round(abs / 60) + " min";
    else if (abs < 86400) text = Math.round(abs / 3600) + " h";
    else text = Math.round(abs / 86400) + " d";
    element.textContent = seconds >= 0 ? text + " ago" : "in " + text;
  }

  function decorate(root) {
    root.querySelectorAll("time[data-relative]").forEach(relative);
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    const select = event.target;
    const name = select.getAttribute("data-reload");
    if (!name || !select.value) return;
    const url = new URL(window.location.href);
    url.searchParams.set(name, select.value);
    window.location.assign(url.toString());
  });

  function scheduleRefresh(element) {
    const source = element.getAttribute("data-refresh");
    if (!source) return;
    window.setTimeout(function () {
      fetch(source, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 303) {
            window.location.reload();
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) { scheduleRefresh(element); return; }
          const holder = document.createElement("div");
          holder.innerHTML = html;
          const fresh = holder.firstElementChild;
          if (!fresh) return;
          element.replaceWith(fresh);
          decorate(fresh);
          scheduleRefresh(fresh);
        })
        .catch(function () { scheduleRefresh(element); });
    }, REFRESH_MS);
  }

  function follow(log) {
    const url = new URL(log.getAttribute("data-stream"), window.location.href);
    url.searchParams.set("from", log.getAttribute("data-next") || "0");
    const source = new EventSource(url.toString());
    const stickToBottom = function () {
      return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    };
    log.scrollTop = log.scrollHeight;
    source.onmessage = function (event) {
      const atBottom = stickToBottom();
      log.appendChild(document.createTextNode(event.data + "\n"));
      if (event.lastEventId) log.setAttribute("data-next", event.lastEventId);
      if (atBottom) log.scrollTop = log.scrollHeight;
    };
    source.addEventListener("end", function (event) {
      source.close();
      log.setAttribute("data-ended", event.data || "");
      log.removeAttribute("data-stream");
    });
    source.onerror = function () {
      // The server closes the stream when the action ends; a closed stream is not retried.
      if (source.readyState === EventSource.CLOSED) log.removeAttribute("data-stream");
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    decorate(document);
    document.querySelectorAll("[data-refresh]").forEach(scheduleRefresh);
    document.querySelectorAll("pre[data-stream]").forEach(follow);
  });
})();
