// queuejob dashboard: refreshes the live pages (overview, workers) in place.
// Served from /static (the Content-Security-Policy allows no inline script). The new
// page is parsed by DOMParser, whose scripts never run, and only its <main> is taken.
(function () {
  "use strict";
  var main = document.getElementById("live");
  var toggle = document.getElementById("autorefresh");
  if (!main || !main.dataset.refresh) {
    return;
  }
  var seconds = parseFloat(main.dataset.refresh) || 5;
  var busy = false;
  var count = 0;

  function refresh() {
    if (busy || (toggle && !toggle.checked) || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) {
          // copy the live list first: adopting a node takes it out of its parent
          var nodes = Array.prototype.slice.call(fresh.childNodes).map(function (node) {
            return document.adoptNode(node);
          });
          main.replaceChildren.apply(main, nodes);
          count += 1;
          main.setAttribute("data-refreshes", String(count));
        }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, seconds * 1000);
})();

// A job's page watches the job while it has not ended: it polls the job's live state
// (/jobs/UUID/live.json, every data-interval seconds) and updates its state and progress
// bar in place, as text (textContent, attributes: nothing the server stored becomes
// markup). When the state or the stored log changed, it fetches the page again and takes
// its <main> (parsed by DOMParser, whose scripts never run), as the live pages do.
(function () {
  "use strict";
  var STATES = ["wait_dependencies", "pending", "enqueued", "started", "done", "failed",
                "cancelled"];
  var busy = false;

  function info() {
    return document.getElementById("job-live");
  }

  function showProgress(progress) {
    var box = document.getElementById("progress");
    var bar = document.getElementById("progress-bar");
    if (!box || !bar) {
      return;
    }
    if (!progress) {
      box.hidden = true;
      return;
    }
    bar.max = progress.total;
    bar.value = progress.done;
    document.getElementById("progress-text").textContent = progress.text;
    document.getElementById("progress-message").textContent = progress.message || "";
    box.hidden = false;
  }

  function showState(state) {
    var badge = document.getElementById("job-state");
    if (!badge) {
      return;
    }
    badge.textContent = state;
    badge.className = STATES.indexOf(state) >= 0 ? "badge " + state : "badge";
  }

  function reload(main) {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh && fresh.querySelector("#job-live")) {
          var nodes = Array.prototype.slice.call(fresh.childNodes).map(function (node) {
            return document.adoptNode(node);
          });
          main.replaceChildren.apply(main, nodes);
        }
      });
  }

  function tick() {
    var live = info();
    var main = document.getElementById("live");
    if (!live || !main || live.dataset.ended === "1") {
      return;  // ended: nothing more to watch
    }
    var seconds = parseFloat(live.dataset.interval) || 1.5;
    if (busy || document.hidden) {
      window.setTimeout(tick, seconds * 1000);
      return;
    }
    busy = true;
    fetch(live.dataset.url, { credentials: "same-origin", cache: "no-store",
                              headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        showState(state.state);
        showProgress(state.progress);
        if (state.state !== live.dataset.state || state.log_marker !== live.dataset.log) {
          return reload(main);  // its new <main> says whether the job has ended
        }
        if (state.ended) {
          live.dataset.ended = "1";
        }
        return null;
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () {
        busy = false;
        var now = info();
        if (now) {
          now.setAttribute("data-polls", String((parseInt(now.dataset.polls, 10) || 0) + 1));
        }
        window.setTimeout(tick, seconds * 1000);
      });
  }

  if (info()) {
    window.setTimeout(tick, (parseFloat(info().dataset.interval) || 1.5) * 1000);
  }
})();
