/* Refresh the on-patrol table every 10 s without reloading the page (the proxy form keeps what
   is being typed). Without JavaScript the page has a refresh link. */
(function () {
  var body = document.getElementById("board-rows");
  var count = document.getElementById("board-count");
  if (!body || !window.fetch) return;
  setInterval(function () {
    fetch(body.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        body.innerHTML = html;
        if (count) count.textContent = body.querySelectorAll("form").length;
      })
      .catch(function () {});
  }, 10000);
})();
