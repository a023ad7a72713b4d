/* Refresh the live part of the board every 10 s without reloading the page: the scroll position
   is kept, and nothing is replaced while a form in it is open or being typed in (a proxy
   check-out's reason). Without JavaScript the page has a refresh link. */
(function () {
  var live = document.getElementById("board-live");
  if (!live || !window.fetch) return;
  function busy() {
    var active = document.activeElement;
    return live.querySelector("details[open]") !== null || (active && active !== document.body && live.contains(active));
  }
  setInterval(function () {
    if (document.hidden || busy()) return;
    fetch(live.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || busy()) return;
        var x = window.scrollX, y = window.scrollY;
        live.innerHTML = html;
        window.scrollTo(x, y);
      })
      .catch(function () {});
  }, 10000);
})();
