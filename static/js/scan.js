/* 平安马甲 scan page: add the phone's location to the form when the point has a geofence, and
   keep a double tap from sending two requests (the server would answer the second one with the
   first answer anyway, thanks to the nonce). Without JavaScript the form still works. */
(function () {
  var form = document.getElementById("scan-form");
  if (!form) return;
  var status = document.getElementById("geo-status");
  var button = form.querySelector("button[type=submit]");
  var wantsLocation = form.getAttribute("data-geofence") === "1" && navigator.geolocation;
  var located = false, submitted = false;

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

  if (wantsLocation) {
    say(status.getAttribute("data-wait"));
    navigator.geolocation.getCurrentPosition(fill, function () {
      say(status.getAttribute("data-fail"));
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 });
  }

  form.addEventListener("submit", function (ev) {
    if (submitted) { ev.preventDefault(); return; }
    if (wantsLocation && !located) {
      // Give the GPS a few more seconds, then send without a location (it is flagged for review).
      ev.preventDefault();
      button.disabled = true;
      say(status.getAttribute("data-wait"));
      var done = false;
      var send = function () { if (!done) { done = true; submitted = true; form.submit(); } };
      navigator.geolocation.getCurrentPosition(function (p) { fill(p); send(); }, send,
        { enableHighAccuracy: true, timeout: 5000, maximumAge: 30000 });
      setTimeout(send, 6000);
      return;
    }
    submitted = true;
    button.disabled = true;
  });
})();
