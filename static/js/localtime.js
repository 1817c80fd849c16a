// Re-render session times in the visitor's own zone, and tell the form which zone that is.
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) { return; }
  var lang = document.documentElement.lang || undefined;
  var dateFormat = new Intl.DateTimeFormat(lang, {
    weekday: "long", day: "numeric", month: "long", year: "numeric",
    hour: "2-digit", minute: "2-digit", timeZone: zone, timeZoneName: "long"
  });
  var timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", timeZone: zone });
  var dayFormat = new Intl.DateTimeFormat("en-CA", { timeZone: zone });
  function render() {
    document.querySelectorAll("time.when[datetime]").forEach(function (el) {
      var start = new Date(el.getAttribute("datetime"));
      var endAttr = el.getAttribute("data-ends");
      if (isNaN(start)) { return; }
      var text = dateFormat.format(start);
      if (endAttr) {
        var end = new Date(endAttr);
        if (!isNaN(end) && dayFormat.format(end) === dayFormat.format(start)) {
          var parts = dateFormat.formatToParts(start);
          var zoneName = parts.filter(function (p) { return p.type === "timeZoneName"; })
            .map(function (p) { return p.value; }).join("");
          var withoutZone = text.replace(zoneName, "").trim();
          text = withoutZone + "–" + timeFormat.format(end) + " " + zoneName;
        }
      }
      el.setAttribute("title", el.textContent);
      el.textContent = text;
    });
    document.querySelectorAll("input[data-browser-zone]").forEach(function (input) {
      input.value = zone;
    });
    document.querySelectorAll("[data-zone-label]").forEach(function (el) {
      el.textContent = zone;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
