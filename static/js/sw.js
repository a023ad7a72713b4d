/* 平安马甲 service worker (where the browser has one; the scan page works without it).
   Keeps the page shell so a poster scanned with no signal still opens a page that can save the
   scan, and sends the offline queue by Background Sync when the connection returns. */
importScripts("/static/js/scanqueue.js");
var CACHE = "pingan-shell-v1";
var SHELL = ["/scan-offline", "/static/css/app.css", "/static/js/scan.js", "/static/js/scanqueue.js"];

self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches["delete"](k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (e) {
  var req = e.request, url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin) return;
  if (req.mode === "navigate") {
    // network first: a scan page is never served stale; with no signal, the shell saves the scan
    if (url.pathname.indexOf("/p/") === 0) {
      e.respondWith(fetch(req)["catch"](function () { return caches.match("/scan-offline"); }));
    }
    return;
  }
  if (SHELL.indexOf(url.pathname) > 0) {
    e.respondWith(fetch(req).then(function (r) {
      var copy = r.clone();
      caches.open(CACHE).then(function (c) { c.put(url.pathname, copy); });
      return r;
    })["catch"](function () { return caches.match(url.pathname); }));
  }
});

function tell() {
  return self.clients.matchAll().then(function (cs) { cs.forEach(function (c) { c.postMessage("pingan-scans"); }); });
}

self.addEventListener("sync", function (e) {
  if (e.tag === "pingan-scans") {
    e.waitUntil(self.PinganQueue.flush().then(function (ok) { tell(); if (!ok) throw new Error("retry later"); }));
  }
});
