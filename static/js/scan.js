/* 平安马甲 scan page: the phone's location, no double send, and a scan that cannot reach the
   server kept on the phone until it can (scanqueue.js). Without JavaScript the form still posts. */
(function () {
  var Q = window.PinganQueue, box = document.getElementById("offline-box");
  var form = document.getElementById("scan-form");
  var status = document.getElementById("geo-status");

  function txt(name) { return box ? box.getAttribute("data-" + name) || "" : ""; }
  function hhmm(iso) {
    var d = new Date(iso), p = function (n) { return (n < 10 ? "0" : "") + n; };
    return p(d.getHours()) + ":" + p(d.getMinutes());
  }
  function nonce() {
    var a = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function line(item, cls, text) {
    var li = document.createElement("li");
    li.className = cls;
    li.textContent = [hhmm(item.client_time), item.label, item.point, text].filter(Boolean).join(" · ");
    return li;
  }

  function render() {
    if (!Q || !box) return Promise.resolve();
    return Promise.all([Q.all("queue"), Q.all("done")]).then(function (r) {
      var wait = r[0], done = r[1], list = document.getElementById("offline-list");
      var state = document.getElementById("offline-state"), refused = done.some(function (d) { return !d.ok; });
      box.hidden = !wait.length && !done.length;
      state.className = "state " + (wait.length ? "state-wait" : refused ? "state-bad" : "state-on");
      state.textContent = wait.length ? txt("saved") + " (" + wait.length + ")" : refused ? txt("some-refused") : txt("all-sent");
      list.textContent = "";
      wait.forEach(function (i) { list.appendChild(line(i, "wait", txt("waiting"))); });
      done.forEach(function (i) {
        var a = i.answer || {}, act = a.action;
        list.appendChild(i.ok ? line(i, act === "duplicate" ? "wait" : "ok", txt("sent-" + (act === "check_out" ? "out" : act === "check_in" ? "in" : "dup")))
                              : line(i, "bad", txt("refused") + ((a.error && a.error.message) || "")));
      });
      var clear = document.getElementById("offline-clear");
      if (clear) clear.hidden = !done.length || !!wait.length;
    })["catch"](function () {});
  }

  function flush() { return Q ? Q.flush().then(render) : Promise.resolve(); }

  function syncLater() {
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.ready.then(function (reg) {
        if (reg.sync) return reg.sync.register("pingan-scans");
      })["catch"](function () {});
    }
  }

  if (Q && box) {
    render().then(function () { if (navigator.onLine !== false) flush(); });
    window.addEventListener("online", flush);
    setInterval(function () { Q.all("queue").then(function (w) { if (w.length) flush(); }, function () {}); }, 30000);
    var clear = document.getElementById("offline-clear");
    if (clear) clear.addEventListener("click", function () { Q.clearDone().then(render); });
    if (navigator.serviceWorker) navigator.serviceWorker.addEventListener("message", render);
  }
  if (navigator.serviceWorker && box) {
    navigator.serviceWorker.register("/sw.js")["catch"](function () {});
  }

  if (!form) return;
  var button = form.querySelector("button[type=submit]");
  var always = form.getAttribute("data-queue-only") === "1";
  var token = decodeURIComponent(location.pathname.split("/p/")[1] || "");
  var wantsLocation = form.getAttribute("data-geofence") === "1" && navigator.geolocation;
  var located = false, submitted = false;
  if (form.elements.nonce && !form.elements.nonce.value) form.elements.nonce.value = nonce();
  // Off for a while: "end now?" for a second (a double tap on 签退), 签退 for a minute after check-in.
  var armed = true;
  function holdOff(ms) {
    if (!(ms > 0)) return;
    armed = false;
    button.disabled = true;
    setTimeout(function () { armed = true; button.disabled = false; }, ms);
  }
  holdOff(parseInt(form.getAttribute("data-arm-ms") || "0", 10));
  if (always && !token) form.hidden = true;

  function say(text) { if (status) status.textContent = text; }

  var MAX_ACCURACY_M = 10000;  // services/checkin.py MAX_ACCURACY_M: a coarser fix is sent as none

  function fill(pos) {
    if (!(pos.coords.accuracy <= MAX_ACCURACY_M)) { say(status.getAttribute("data-fail")); return; }
    form.elements.lat.value = pos.coords.latitude;
    form.elements.lon.value = pos.coords.longitude;
    form.elements.accuracy.value = Math.round(pos.coords.accuracy);
    located = true;
    say(status.getAttribute("data-ok").replace("%s", Math.round(pos.coords.accuracy)));
  }

  function num(name) { var v = parseFloat(form.elements[name].value); return isFinite(v) ? v : null; }

  var outLabel = form.getAttribute("data-out"), question = form.getAttribute("data-end-question");
  var debounceMs = parseInt(form.getAttribute("data-debounce-ms") || "0", 10);

  function keep(item) {
    // A kept check-out goes as confirmed (nobody answers the server's question later): ask it now.
    if (question && item.label === outLabel && !window.confirm(question)) {
      submitted = false;
      button.disabled = false;
      return;
    }
    Q.add(item).then(function () {
      // the next tap: the other action, its own nonce
      form.elements.nonce.value = nonce();
      var other = form.getAttribute("data-other");
      if (other) { form.setAttribute("data-other", button.textContent); button.textContent = other; }
      submitted = false;
      button.disabled = false;
      if (other && other === outLabel) holdOff(debounceMs);   // just checked in: 签退 waits, as online
      return render();
    }).then(function () {
      box.scrollIntoView();
      syncLater();
      if (navigator.onLine !== false) flush();
    }, function () { form.submit(); });
  }

  function send() {
    submitted = true;
    button.disabled = true;
    var item = { nonce: form.elements.nonce.value, token: token, point: form.getAttribute("data-point") || "",
                 label: button.textContent.trim(), client_time: new Date().toISOString(),
                 lat: num("lat"), lon: num("lon"), accuracy: num("accuracy") };
    if (!Q || !box) { form.submit(); return; }
    if (always || navigator.onLine === false) { keep(item); return; }
    Q.all("queue").then(function (waiting) {
      if (waiting.length) { keep(item); return; }  // after the ones already waiting, in order
      var ctrl = window.AbortController ? new AbortController() : null;
      var timer = setTimeout(function () { if (ctrl) ctrl.abort(); }, 20000);
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                           signal: ctrl ? ctrl.signal : undefined })
        .then(function (r) {
          clearTimeout(timer);
          if (r.status === 502 || r.status === 503 || r.status === 504) throw new Error("busy");
          return r.text().then(function (html) { document.open(); document.write(html); document.close(); });
        })["catch"](function () { clearTimeout(timer); keep(item); });
    }, function () { form.submit(); });
  }

  if (wantsLocation) {
    say(status.getAttribute("data-wait"));
    navigator.geolocation.getCurrentPosition(fill, function () {
      say(status.getAttribute("data-fail"));
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (submitted || !armed) return;
    if (wantsLocation && !located) {
      // a few more seconds for the GPS, then without a location (flagged)
      submitted = true;
      button.disabled = true;
      say(status.getAttribute("data-wait"));
      var done = false;
      var go = function () { if (!done) { done = true; send(); } };
      navigator.geolocation.getCurrentPosition(function (p) { fill(p); go(); }, go,
        { enableHighAccuracy: true, timeout: 5000, maximumAge: 30000 });
      setTimeout(go, 6000);
      return;
    }
    send();
  });
})();
