/* Copy buttons: <button data-copy="id-of-input-or-textarea" data-done="已复制">. Uses the clipboard
   API where allowed (HTTPS or localhost) and falls back to selecting the text and execCommand, so
   the coordinator can at least press and hold to copy. No inline script: the page's CSP forbids it. */
(function () {
  function done(button) {
    var status = document.getElementById("copy-status");
    var label = button.getAttribute("data-done") || "";
    if (status) status.textContent = label;
    var before = button.textContent;
    button.textContent = label || before;
    setTimeout(function () { button.textContent = before; }, 2000);
  }
  function fallback(field, button) {
    field.focus();
    field.select();
    try { if (document.execCommand("copy")) done(button); } catch (e) { /* the text stays selected */ }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { done(button); }, function () { fallback(field, button); });
    } else {
      fallback(field, button);
    }
  });
  document.querySelectorAll("input.copy, textarea.copy").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });
})();
