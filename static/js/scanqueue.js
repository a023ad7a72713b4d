/* 平安马甲 offline scan queue, shared by the pages and the service worker.
   A scan that cannot reach the server is kept in IndexedDB (nonce, token, the phone's time and
   location) and sent oldest first to POST /api/v1/scans with confirm: true and client_time. The
   nonce makes every retry safe: the server answers a repeat with its first answer. Answers are
   kept in a second store, so a scan is never dropped without the page saying what became of it. */
(function (g) {
  var DB = "pingan-scans", flushing = null;

  function open() {
    return new Promise(function (ok, fail) {
      if (!g.indexedDB) { fail(new Error("no IndexedDB")); return; }
      var req = g.indexedDB.open(DB, 1);
      req.onupgradeneeded = function () {
        req.result.createObjectStore("queue", { keyPath: "nonce" });
        req.result.createObjectStore("done", { keyPath: "nonce" });
      };
      req.onsuccess = function () { ok(req.result); };
      req.onerror = function () { fail(req.error); };
    });
  }

  function run(store, mode, fn) {
    return open().then(function (db) {
      return new Promise(function (ok, fail) {
        var tx = db.transaction(store, mode), out = fn(tx.objectStore(store));
        tx.oncomplete = function () { db.close(); ok(out && "result" in out ? out.result : undefined); };
        tx.onerror = tx.onabort = function () { db.close(); fail(tx.error); };
      });
    });
  }

  function all(store) {
    return run(store, "readonly", function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).sort(function (a, b) { return a.client_time < b.client_time ? -1 : 1; });
    });
  }

  function add(item) { return run("queue", "readwrite", function (s) { s.put(item); }); }

  function settle(item, ok, body) {
    return run("queue", "readwrite", function (s) { s["delete"](item.nonce); }).then(function () {
      item.ok = ok; item.answer = body; item.sent_at = new Date().toISOString();
      return run("done", "readwrite", function (s) { s.put(item); });
    });
  }

  function post(item) {
    var body = { token: item.token, nonce: item.nonce, confirm: true, client_time: item.client_time,
                 lat: item.lat, lon: item.lon, accuracy: item.accuracy };
    return fetch("/api/v1/scans", { method: "POST", credentials: "same-origin",
                                    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) {
        // no signal, server busy, not signed in or too many requests: keep it and try later
        if (r.status >= 500 || r.status === 401 || r.status === 429 || r.status === 408) return false;
        return r.json().then(function (answer) { return settle(item, r.ok, answer).then(function () { return true; }); });
      }, function () { return false; });
  }

  /* Send what is waiting, oldest first; stop at the first one that still cannot get through. */
  function flush() {
    if (flushing) return flushing;
    flushing = all("queue").then(function (items) {
      return items.reduce(function (p, item) {
        return p.then(function (go) { return go ? post(item) : false; });
      }, Promise.resolve(true));
    })["catch"](function () { return false; }).then(function (r) { flushing = null; return r; });
    return flushing;
  }

  g.PinganQueue = { add: add, all: all, flush: flush,
                    clearDone: function () { return run("done", "readwrite", function (s) { s.clear(); }); } };
})(self);
