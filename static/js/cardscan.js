/* 平安马甲: scan the volunteer card's QR with this phone's camera, where the browser can read QR
   codes itself (BarcodeDetector); elsewhere the page says how to do it with the phone's scanner.
   A card of this service opens its sign-in page, which comes back to the poster. */
(function () {
  var button = document.getElementById("card-scan"), video = document.getElementById("card-video");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      video.play();
      var look = function () {
        detector.detect(video).then(function (codes) {
          for (var i = 0; i < codes.length; i++) {
            var url;
            try { url = new URL(codes[i].rawValue); } catch (e) { continue; }
            if (url.origin === location.origin && url.pathname.indexOf("/card/") === 0) {
              stream.getTracks().forEach(function (t) { t.stop(); });
              url.searchParams.set("next", location.pathname);
              location.href = url.href;
              return;
            }
          }
          setTimeout(look, 300);
        }, function () { setTimeout(look, 500); });
      };
      look();
    }, function () { button.hidden = true; });
  });
})();
