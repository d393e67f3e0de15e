// Live updates of a running push, the pages' only script: the page works
// without it. Every 2 s it reads the push's JSON, rewrites the progress
// line, and reloads when the page would show something new (the judge's
// next look at the phase, the next phase, the push ended); it stops once
// the push is done.
(function () {
  "use strict";
  var body = document.body;
  if (body.dataset.live !== "1") return;
  var url = "/api/pushes/" + encodeURIComponent(body.dataset.push);
  function tick() {
    fetch(url, { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (v) {
        if (v.stamp !== body.dataset.stamp) { location.reload(); return; }
        var p = document.getElementById("progress");
        if (p) p.textContent = v.progress;
        setTimeout(tick, 2000);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
