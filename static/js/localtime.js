// Rewrite each session time (<time class="when">) where the visitor is, in the page's language,
// keeping the session's own time beside it: "…10:00–11:30 Japan Standard Time (your time) ·
// 03:00–04:30 in Berlin". The server hands over its CLDR patterns and its translated words
// (data-patterns, data-words), so the browser writes a time exactly as the server does; Intl
// gives the numbers and names (formatToParts) in the visitor's zone.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat.prototype.formatToParts) { return; }
  var visitorZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!visitorZone) { return; }

  // The CLDR pattern letters our patterns use, as the Intl option that gives that field.
  var FIELDS = {
    EEEE: ["weekday", "long"], EEE: ["weekday", "short"], E: ["weekday", "short"],
    y: ["year", "numeric"], MMMM: ["month", "long"], MMM: ["month", "short"],
    MM: ["month", "2-digit"], M: ["month", "numeric"], dd: ["day", "2-digit"],
    d: ["day", "numeric"], HH: ["hour", "2-digit"], H: ["hour", "numeric"],
    mm: ["minute", "2-digit"]
  };
  var TOKEN = /'[^']*'|([A-Za-z])\1*|[^'A-Za-z]+/g;
  var formatters = {};

  function formatter(lang, zone, options) {
    var key = lang + "|" + zone + "|" + JSON.stringify(options);
    if (!formatters[key]) {
      formatters[key] = new Intl.DateTimeFormat(lang, Object.assign({ timeZone: zone }, options));
    }
    return formatters[key];
  }

  function values(moment, lang, zone, options) {
    var found = {};
    formatter(lang, zone, options).formatToParts(moment).forEach(function (part) {
      found[part.type] = part.value;
    });
    return found;
  }

  // A moment written with a CLDR pattern: Intl's value for each field, the pattern's literals.
  function format(moment, pattern, lang, zone) {
    var tokens = pattern.match(TOKEN) || [];
    var options = { hourCycle: "h23" };
    tokens.forEach(function (token) {
      var field = FIELDS[token];
      if (field) { options[field[0]] = field[1]; }
    });
    var found = values(moment, lang, zone, options);
    return tokens.map(function (token) {
      if (FIELDS[token]) { return found[FIELDS[token][0]]; }
      if (/^[A-Za-z]/.test(token)) { throw new Error("unknown pattern letter " + token); }
      return token.charAt(0) === "'" ? (token.slice(1, -1) || "'") : token;
    }).join("");
  }

  function fill(template, names) {
    return template.replace(/%\((\w+)\)s/g, function (whole, name) { return names[name]; });
  }

  // A calendar day as a number, so that two days can be told apart and counted.
  function dayNumber(moment, zone) {
    var found = values(moment, "en", zone, { year: "numeric", month: "numeric", day: "numeric" });
    return Date.UTC(+found.year, +found.month - 1, +found.day) / 86400000;
  }

  function zoneName(moment, lang, zone) {
    return values(moment, lang, zone, { timeZoneName: "long" }).timeZoneName;
  }

  // The same rule as times._times on the server: one day, the next day marked, or two dates.
  function dayAndTimes(start, end, zone, how, withDate) {
    var p = how.patterns, w = how.words, lang = how.lang;
    var date = function (moment) { return format(moment, p.date, lang, zone); };
    var time = function (moment) { return format(moment, p.time, lang, zone); };
    var days = end ? dayNumber(end, zone) - dayNumber(start, zone) : 0;
    if (days > 1) {
      return fill(w.span, {
        start: fill(w.day, { date: date(start), time: time(start) }),
        end: fill(w.day, { date: date(end), time: time(end) })
      });
    }
    var times = !end ? time(start)
      : fill(days === 1 ? w.next_day : w.range, { start: time(start), end: time(end) });
    return withDate ? fill(w.day, { date: date(start), time: times }) : times;
  }

  function sameWallTime(moment, zoneA, zoneB) {
    var options = { year: "numeric", month: "numeric", day: "numeric", hour: "numeric",
                    minute: "numeric", hourCycle: "h23" };
    return formatter("en", zoneA, options).format(moment) ===
      formatter("en", zoneB, options).format(moment);
  }

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function render(element) {
    var start = new Date(element.getAttribute("datetime"));
    var end = element.hasAttribute("data-ends") ? new Date(element.getAttribute("data-ends")) : null;
    var sessionZone = element.getAttribute("data-zone");
    var how = {
      // The language of the server's words, which the element names (an ancestor may be a
      // session in another language).
      lang: element.getAttribute("lang") || document.documentElement.lang,
      patterns: JSON.parse(element.getAttribute("data-patterns")),
      words: JSON.parse(element.getAttribute("data-words"))
    };
    if (isNaN(start) || (end && isNaN(end)) || !sessionZone) { return; }
    var yours = fill(how.words.zone, {
      when: dayAndTimes(start, end, visitorZone, how, true),
      zone: zoneName(start, how.lang, visitorZone)
    });
    var same = sameWallTime(start, visitorZone, sessionZone) &&
      (!end || sameWallTime(end, visitorZone, sessionZone));
    var parts = [span("when-here", same ? yours : fill(how.words.yours, { when: yours }))];
    if (!same) {
      var sameDay = dayNumber(start, visitorZone) === dayNumber(start, sessionZone);
      parts.push(document.createTextNode(" · "), span("when-there", fill(how.words.there, {
        when: dayAndTimes(start, end, sessionZone, how, !sameDay),
        city: element.getAttribute("data-city")
      })));
    }
    element.replaceChildren.apply(element, parts);
  }

  function renderAll() {
    document.querySelectorAll("time.when[datetime][data-words]").forEach(function (element) {
      try { render(element); } catch (e) { /* the server's text stays */ }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
})();
