/* 平安马甲 page behaviours (the CSP allows no inline script): form[data-confirm] asks first;
   select[data-autosubmit] submits on change; input[data-select] selects all on click;
   form[data-mark-read-on-view] posts after two visible seconds (a GET marks nothing read);
   button[data-wait-seconds] stays off, counting down in data-wait-label. */
(function () {
  function markReadOnView(form) {
    var timer = null, sent = false;
    function send() {
      if (sent || !window.fetch || !window.FormData) return;
      sent = true;
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                           headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { if (r.ok && form.parentNode) form.parentNode.removeChild(form); })
        .catch(function () { sent = false; });
    }
    function watch() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (document.visibilityState === "visible") timer = setTimeout(send, 2000);
    }
    document.addEventListener("visibilitychange", watch);
    watch();
  }

  function waitThenEnable(button) {
    var left = parseInt(button.getAttribute("data-wait-seconds"), 10) || 0;
    var label = button.textContent, waiting = button.getAttribute("data-wait-label") || "%(s)s";
    function tick() {
      if (left <= 0) { button.disabled = false; button.textContent = label; return; }
      button.disabled = true;
      button.textContent = waiting.replace("%(s)s", String(left));
      left -= 1;
      setTimeout(tick, 1000);
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form[data-mark-read-on-view]");
    for (var i = 0; i < forms.length; i++) markReadOnView(forms[i]);
    var waits = document.querySelectorAll("button[data-wait-seconds]");
    for (var j = 0; j < waits.length; j++) waitThenEnable(waits[j]);
  });

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) {
      if (el.form.requestSubmit) { el.form.requestSubmit(); } else { el.form.submit(); }
    }
  });

  document.addEventListener("click", function (ev) {
    var el = ev.target;
    if (el && el.hasAttribute && el.hasAttribute("data-select") && el.select) { el.select(); }
  });
})();
