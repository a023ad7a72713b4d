/* 平安马甲: the page behaviours that used to be inline handlers. The Content-Security-Policy
   allows no inline script, so every page loads this one file instead:
   - <form data-confirm="question">: ask before submitting (rotating a point's key, deleting a
     shift, revoking a card); Cancel sends nothing.
   - <select data-autosubmit>: submit the form when the choice changes (a <noscript> button
     stays for browsers without JavaScript).
   - <input data-select>: select the whole value on click, for copying a link. */
(function () {
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
