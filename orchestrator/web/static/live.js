// Live job page: while the job runs, fetch the server-rendered matrix and progress every
// 2 s and swap them in; stop once the server says the job is final (X-Live: 0).
// "no-cache" revalidates with the fragment's ETag: an unchanged job costs the server two
// small queries (a 304), and the browser hands back the copy it has.
(function () {
  "use strict";
  var box = document.getElementById("live");
  if (!box || box.dataset.live !== "1") { return; }
  var timer = null;
  var shown = null;
  function poll() {
    if (document.hidden) { return; }  // a background tab asks again when it is shown
    fetch(box.dataset.src, { headers: { "Accept": "text/html" }, cache: "no-cache" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        var live = response.headers.get("X-Live");
        return response.text().then(function (html) {
          if (html !== shown) {
            box.innerHTML = html;
            shown = html;
            box.dataset.updated = String(Date.now());
          }
          if (live === "0") { box.dataset.live = "0"; clearInterval(timer); }
        });
      })
      .catch(function () { /* a missed poll is retried on the next tick */ });
  }
  timer = setInterval(poll, 2000);
})();
