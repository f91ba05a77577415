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
