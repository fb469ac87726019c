// The console's only script: keep the operations table and an operation's
// page current (every 2 s, the same page's fragment), and ask before a
// destructive button acts.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-confirm]");
    if (b && b.dataset.confirm && !window.confirm(b.dataset.confirm)) {
      e.preventDefault();
    }
  });
  var live = document.querySelector("[data-refresh]");
  if (!live) {
    return;
  }
  var part = live.dataset.refresh;
  var target = part === "rows" ? document.getElementById("rows") : live;
  setInterval(function () {
    if (document.hidden) {
      return;
    }
    var u = new URL(window.location.href);
    u.searchParams.set("partial", part);
    u.searchParams.delete("flash");
    fetch(u, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { target.innerHTML = html; } })
      .catch(function () {});
  }, 2000);
})();
