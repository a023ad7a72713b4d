/* 平安马甲: the page behaviours that used to be inline handlers. The Content-Security-Policy
   allows no inline script, so every page loads this one file instead:
   - <form data-confirm="question">: ask before submitting (rotating a point's key, deleting a
     shift, revoking a card); Cancel sends nothing.
   - <select data-autosubmit>: submit the form when the choice changes (a <noscript> button
     stays for browsers without JavaScript).
   - <input data-select>: select the whole value on click, for copying a link.
   - <form data-mark-read-on-view>: once the inbox has been visible for two seconds, post the
     form (CSRF token and the ids shown) in the background; a GET never marks anything read.
   - <button data-wait-seconds="60" data-wait-label="%(s)s …">: disabled for that long, counting
     down in its label ("重新发送" a sign-in code: the server would hold a second text anyway). */
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
