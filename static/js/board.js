/* Refresh the on-patrol table every 10 s without reloading the page (the proxy form keeps what
   is being typed). Without JavaScript the page has a refresh link. */
(function () {
  var body = document.getElementById("board-rows");
  var count = document.getElementById("board-count");
  if (!body || !window.fetch) return;
  setInterval(function () {
    // The server answers 304 (ETag) when nothing changed; the browser then hands back its copy.
    fetch(body.getAttribute("data-src"), { credentials: "same-origin", cache: "no-cache" })
      .then(function (r) {
        if (!r.ok) return null;
        if (count && r.headers.get("X-Board-Total")) count.textContent = r.headers.get("X-Board-Total");
        return r.text();
      })
      .then(function (html) {
        if (html === null || body.innerHTML === html) return;
        body.innerHTML = html;
      })
      .catch(function () {});
  }, 10000);
})();
