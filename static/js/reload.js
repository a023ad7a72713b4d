/* 平安马甲: <meta name="pv-reload-after" content="5"> reloads the page every 5 s (an indicator
   page while the office's change is being counted), but not while a field has the focus or holds
   something the person changed: a plain refresh dropped a half-typed filter. Only the pages that
   need it load this file (the scan page's weight is budgeted). */
(function () {
  function busyWithAForm() {
    var active = document.activeElement;
    if (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return true;
    var fields = document.querySelectorAll("input, select, textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "hidden") continue;
      if (f.type === "checkbox" || f.type === "radio") { if (f.checked !== f.defaultChecked) return true; }
      else if (f.tagName === "SELECT") {
        // As loaded: the option marked `selected`, or the first when none is.
        var loaded = 0;
        for (var j = 0; j < f.options.length; j++) if (f.options[j].defaultSelected) loaded = j;
        if (f.options.length && f.selectedIndex !== loaded) return true;
      } else if (f.value !== f.defaultValue) return true;
    }
    return false;
  }

  function reloadWhenIdle(seconds) {
    setTimeout(function () {
      if (busyWithAForm()) reloadWhenIdle(seconds); else window.location.reload();
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var reload = document.querySelector('meta[name="pv-reload-after"]');
    if (reload) reloadWhenIdle(parseInt(reload.getAttribute("content"), 10) || 5);
  });
})();
