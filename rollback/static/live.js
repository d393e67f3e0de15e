// Live updates of a running push, the pages' only script: the page works
// without it. Every 2 s it reads the push's JSON, rewrites the progress
// line, and reloads when the page would show something new (a phase
// judged, the push ended); it stops once the push is done.
(function () {
  "use strict";
  var body = document.body;
  if (body.dataset.live !== "1") return;
  var url = "/api/pushes/" + encodeURIComponent(body.dataset.push);
  // An operator filling in the controls' form is not interrupted: the page
  // reloads once the form is left empty again.
  function typing() {
    var inputs = document.querySelectorAll("form.orders input");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value !== "" || document.activeElement === inputs[i]) return true;
    }
    return false;
  }
  function tick() {
    fetch(url, { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (v) {
        if (v.stamp !== body.dataset.stamp && !typing()) { location.reload(); return; }
        var p = document.getElementById("progress");
        if (p) p.textContent = v.progress;
        setTimeout(tick, 2000);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
