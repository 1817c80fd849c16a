// The sign-up form: bring its error summary into view, let the summary's links focus their
// field, and offer the browser's time zone while the person has not chosen one.
(function () {
  "use strict";

  function showErrorSummary() {
    var summary = document.querySelector("[data-error-summary]");
    if (!summary) { return; }
    // Focus moves screen readers to it; the scroll makes it the first thing seen on a phone.
    summary.focus({ preventScroll: true });
    summary.scrollIntoView({ block: "start" });
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      if (!link) { return; }
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) { return; }
      event.preventDefault();
      // Show the question with its label (or a group's legend) above the control, as GOV.UK does.
      var fieldset = field.closest("fieldset");
      var label = fieldset ? fieldset.querySelector("legend")
        : document.querySelector("label[for='" + field.id + "']");
      (label || field).scrollIntoView({ block: "start" });
      field.focus({ preventScroll: true });
    });
  }

  function offerBrowserZone() {
    var select = document.querySelector("select[data-prefill]");
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    if (!select || !zone) { return; }
    // Browsers may name a zone by an older spelling (Asia/Calcutta for Asia/Kolkata).
    for (var i = 0; i < select.options.length; i += 1) {
      var option = select.options[i];
      var aliases = (option.getAttribute("data-aliases") || "").split(" ");
      if (option.value === zone || aliases.indexOf(zone) !== -1) {
        select.value = option.value;
        return;
      }
    }
  }

  function start() {
    showErrorSummary();
    offerBrowserZone();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
