/* Refresh the live part of the board every 10 s without reloading the page: the scroll position
   is kept, and nothing is replaced while a form in it is open or being typed in (a proxy
   check-out's reason). The last answer's ETag is sent back as If-None-Match, so a board where
   nothing changed answers 304 with no body. Without JavaScript the page has a refresh link. */
(function () {
  var live = document.getElementById("board-live");
  if (!live || !window.fetch) return;
  var etag = null;
  function busy() {
    var active = document.activeElement;
    return live.querySelector("details[open]") !== null || (active && active !== document.body && live.contains(active));
  }
  setInterval(function () {
    if (document.hidden || busy()) return;
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch(live.getAttribute("data-src"), { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (r) {
        if (r.status === 304 || !r.ok) return null;
        var tag = r.headers.get("ETag");
        return r.text().then(function (html) { return { html: html, tag: tag }; });
      })
      .then(function (got) {
        if (got === null || busy()) return;
        var x = window.scrollX, y = window.scrollY;
        live.innerHTML = got.html;
        etag = got.tag;
        window.scrollTo(x, y);
      })
      .catch(function () {});
  }, 10000);
})();
