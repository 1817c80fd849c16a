// The embeddable sign-up for another site's pages: <forum-signup event="slug"> (one session)
// and <forum-programme> (the upcoming sessions, several at once). Each renders in its own
// shadow root (open: nothing in it is secret, and accessibility checkers such as axe can only
// look inside an open one) from our /api/v1 (the script's own origin), in English or Japanese, with styles
// adopted as a constructed stylesheet (no inline style, so a strict host CSP allows them), no
// cookies, no storage, and API data only ever written as text. Until it renders, the element's
// own content (a link to our page) is what people see.
(() => {
  "use strict";
  if (!window.customElements || !("adoptedStyleSheets" in Document.prototype)) { return; }
  const ORIGIN = new URL(document.currentScript.src).origin;
  const LANGUAGES = ["en", "ja"];

  const CSS = `
:host { display: block; }
:host([hidden]) { display: none; }
/* "all: initial" cuts every inherited property (colour, size, spacing) the host page gives the
   element: host rules such as "* { color: red !important }" stop at the shadow root. */
.fs { all: initial; display: block; box-sizing: border-box; max-width: 44em; padding: 1em;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Noto Sans JP", sans-serif;
  color: #1d2a33; background: #fff; border: 1px solid #c9d4cf; border-radius: 6px;
  overflow-wrap: anywhere; text-align: start; }
.fs * { box-sizing: border-box; }
h2 { margin: 0 0 .5em; font-size: 1.4em; line-height: 1.25; }
h3 { margin: 1em 0 .5em; font-size: 1.15em; }
p { margin: .5em 0; }
a { color: #0a6e4f; }
.tags, .hint, .zone-note { color: #5b6b76; font-size: .9em; }
time { word-break: keep-all; overflow-wrap: anywhere; }
:is(a, button, input, select, [tabindex]):focus-visible {
  outline: 3px solid #0b0c0c; outline-offset: 3px; box-shadow: 0 0 0 3px #ffdd00; }
.error-summary:focus { outline: 3px solid #1d2a33; outline-offset: 2px; }
.field { margin-top: 1.25em; }
.field > label, legend { display: block; margin: 0 0 .25em; padding: 0; font-weight: 600; }
.field .hint { margin: 0 0 .25em; }
.field-error { color: #a32121; margin: 0 0 .35em; font-weight: 700; }
input, select, button { font: inherit; color: inherit; max-width: 100%; }
input:not([type=checkbox]):not([type=radio]), select { display: block; width: 100%;
  min-height: 44px; padding: .5em; border: 1px solid #6f7f79; border-radius: 4px;
  background: #fff; }
fieldset { border: 0; padding: 0; margin: 0; min-width: 0; }
.radio, .checkbox { display: flex; align-items: flex-start; gap: .6em; margin: .25em 0;
  min-height: 44px; }
.radio input, .checkbox input { flex: none; width: 1.5em; height: 1.5em; margin: .6em 0 0;
  accent-color: #0a6e4f; }
.radio label, .checkbox label { flex: 1; padding: .55em 0; font-weight: normal; }
.checkbox + .hint, .checkbox ~ .notice-link { margin: 0; padding-left: 2.1em; }
.field-invalid { border-left: 5px solid #a32121; padding-left: .75em; }
.field-invalid input:not([type=checkbox]):not([type=radio]), .field-invalid select {
  border: 2px solid #a32121; }
button { display: inline-block; min-height: 44px; margin-top: 1.25em; padding: .6em 1.2em;
  border: 0; border-radius: 4px; background: #0a6e4f; color: #fff; cursor: pointer; }
button[aria-disabled=true] { opacity: .6; cursor: progress; }
.error-summary { margin: 0 0 1.5em; padding: 1em; border: 5px solid #a32121; }
.error-summary h3 { margin: 0 0 .5em; font-size: 1.2em; }
.error-summary ul { margin: 0; padding-left: 1.25em; }
.error-summary a { color: #a32121; font-weight: 700; }
.notice { padding: .75em 1em; background: #fff7e0; border-left: 4px solid #d9a400; }
.outcome:not(:empty) { margin: 1em 0; padding: 1em; background: #0a6e4f; color: #fff; }
.outcome h3 { margin: 0 0 .5em; }
.outcome:focus { outline: 3px solid #0b0c0c; outline-offset: 3px; }
ul.sessions { list-style: none; margin: 0; padding: 0; }
ul.sessions li { border-bottom: 1px solid #dde5e1; }
.honeypot { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
.visually-hidden { position: absolute; width: 1px; height: 1px; margin: 0; padding: 0;
  overflow: hidden; clip-path: inset(50%); white-space: nowrap; border: 0; }
`;
  let sheet = null;
  function styles() {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    return sheet;
  }

  // A DOM node: attributes set one by one, children appended as nodes or as text.
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === true) { element.setAttribute(name, ""); }
      else if (value !== false && value !== null && value !== undefined) {
        element.setAttribute(name, String(value));
      }
    }
    element.append(...children.flat().filter((child) => child !== null && child !== undefined));
    return element;
  }

  // "{n} seats left" with {n} filled in; any other {name} the API may add stays as it is.
  function fill(text, values) {
    return String(text || "").replace(/\{(\w+)\}/g, (whole, name) =>
      (name in values ? String(values[name]) : whole));
  }

  function languageOf(element) {
    const found = element.closest("[lang]");
    const code = (found ? found.getAttribute("lang") : "").toLowerCase().split("-")[0];
    return LANGUAGES.includes(code) ? code : "en";
  }

  async function getJSON(path, language) {
    const response = await fetch(ORIGIN + path, {
      credentials: "omit",
      headers: { Accept: "application/json", "Accept-Language": language },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) { throw Object.assign(new Error(body.detail || body.title), { body }); }
    return body;
  }

  // The form's description (fields, labels, texts) once per language for the whole page.
  const forms = {};
  function formFor(language) {
    forms[language] = forms[language] ||
      getJSON(`/api/v1/form?lang=${language}`, language).catch((error) => {
        delete forms[language];
        throw error;
      });
    return forms[language];
  }

  // A session's time where the visitor is, written as our pages write it, the zone named in
  // words: "Wednesday 14 July 2027, 10:00–11:30 Japan Standard Time", "2027年7月14日(水)
  // 10:00〜11:30 日本標準時" (Intl's formatRange would name the zone only as "GMT+9").
  const DATES = {
    en: { weekday: "long", pattern: (p) => `${p.weekday} ${p.day} ${p.month} ${p.year}`,
          afterDate: ", ", dash: "–" },
    ja: { weekday: "short", pattern: (p) => `${p.year}年${p.month}月${p.day}日(${p.weekday})`,
          afterDate: " ", dash: "〜" },
  };
  function when(session, language) {
    const style = DATES[language];
    const locale = language === "ja" ? "ja-JP" : "en-GB";
    const parts = (moment, options) => Object.fromEntries(
      new Intl.DateTimeFormat(locale, options).formatToParts(moment)
        .map((part) => [part.type, part.value]));
    const date = (moment) => style.pattern(parts(moment, { weekday: style.weekday,
      year: "numeric", month: language === "ja" ? "numeric" : "long", day: "numeric" }));
    const time = (moment) => {
      const found = parts(moment, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      return `${found.hour}:${found.minute}`;
    };
    const start = new Date(session.starts_at);
    const end = session.ends_at ? new Date(session.ends_at) : null;
    let text = date(start) + style.afterDate + time(start);
    if (end) {
      text += style.dash +
        (date(end) === date(start) ? time(end) : date(end) + style.afterDate + time(end));
    }
    const zone = parts(start, { timeZoneName: "long" }).timeZoneName;
    return h("time", { datetime: session.starts_at }, zone ? `${text} ${zone}` : text);
  }

  function visitorZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  class SignUpWidget extends HTMLElement {
    connectedCallback() {
      if (this.shadow) { return; }
      this.language = languageOf(this);
      // The slot keeps the host's own content (the link to our page) on show until the widget
      // has something to show instead, or for good if the API can't be reached.
      this.shadow = this.attachShadow({ mode: "open" });
      this.shadow.adoptedStyleSheets = [styles()];
      this.shadow.append(h("slot"));
      this.start().catch((error) => this.failed(error));
    }

    // Swap the host's content for the widget.
    show(...children) {
      this.box = h("div", { class: "fs", lang: this.language }, ...children);
      this.shadow.replaceChildren(this.box);
    }

    // The API's words when it answered (but for a session it doesn't know, whose detail is
    // for developers), else "could not be reached"; the host's own link stays under them.
    failed(error) {
      const texts = this.texts || {};
      const body = (error && error.body) || {};
      const detail = body.status === 404 ? texts.not_found
        : body.detail || body.title || texts.network_error;
      if (!detail) { return; }  // nothing to add: the host's link stays as it is
      this.shadow.replaceChildren(h("div", { class: "fs", lang: this.language },
        h("p", { class: "notice", role: "alert" }, detail), h("slot")));
    }

    // The form's fields as our own page lays them out; the language select starts at the
    // widget's language and the zone at the visitor's (else the session's).
    fields(form, defaultZone) {
      const zone = visitorZone();
      return form.fields.map((field) => {
        let chosen = null;
        if (field.name === "language") { chosen = this.language; }
        if (field.name === "timezone") {
          const values = (field.options || []).map((option) => option.value);
          chosen = values.includes(zone) ? zone : defaultZone;
        }
        return renderField(field, chosen);
      }).concat(honeypot(form.honeypot, this.texts));
    }

    // The form, its error summary's place and the outcome's live region; extraBody() gives
    // what to post besides the fields (the sessions ticked).
    renderForm(form, action, submitText, extraBody, ...before) {
      this.summary = h("div", { class: "summary-slot" });
      this.outcome = h("div", { class: "outcome", role: "status", tabindex: "-1" });
      this.button = h("button", { type: "submit" }, submitText);
      this.form = h("form", { novalidate: true }, ...before, ...this.fields(form, this.zone),
        this.button);
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.send(action, extraBody());
      });
      return [this.summary, this.form, this.outcome];
    }

    values() {
      const body = {};
      for (const control of this.form.elements) {
        if (!control.name || control.type === "submit" || control.name === "events") { continue; }
        if (control.type === "checkbox") { body[control.name] = control.checked; }
        else if (control.type === "radio") {
          if (control.checked) { body[control.name] = control.value; }
          else if (!(control.name in body)) { body[control.name] = ""; }
        } else { body[control.name] = control.value; }
      }
      return body;
    }

    async send(path, extra) {
      if (this.busy) { return; }
      this.busy = true;
      this.button.setAttribute("aria-disabled", "true");
      const body = { ...this.values(), ...extra };
      let response;
      let answer = {};
      try {
        response = await fetch(ORIGIN + path, {
          method: "POST", credentials: "omit", mode: "cors",
          headers: { "Content-Type": "application/json",
                     Accept: "application/json, application/problem+json",
                     "Accept-Language": this.language },
          body: JSON.stringify(body),
        });
        answer = await response.json().catch(() => ({}));
      } catch (error) {
        response = null;
      } finally {
        this.busy = false;
        this.button.removeAttribute("aria-disabled");
      }
      this.clearErrors();
      if (response && response.status === 202) { this.accepted(answer, body.email); }
      else if (response && response.status === 422 && Array.isArray(answer.errors)) {
        this.showErrors(answer.errors.map((error) => [error.field, error.message]));
      } else if (response && response.status === 429) {
        this.showErrors([[null, this.texts.too_many]]);
      } else {
        this.showErrors([[null, (response && (answer.detail || answer.title)) ||
          this.texts.network_error]]);
      }
    }

    clearErrors() {
      this.summary.replaceChildren();
      for (const field of this.form.querySelectorAll(".field-invalid")) {
        field.classList.remove("field-invalid");
        field.querySelector(".field-error")?.remove();
        for (const control of field.querySelectorAll("[aria-invalid]")) {
          control.removeAttribute("aria-invalid");
          const rest = (control.getAttribute("aria-describedby") || "").split(" ")
            .filter((id) => id && !id.endsWith("-error"));
          if (rest.length) { control.setAttribute("aria-describedby", rest.join(" ")); }
          else { control.removeAttribute("aria-describedby"); }
        }
      }
    }

    // As our page: a summary at the top linking to each field, the message by the field, the
    // controls marked invalid and described by it, the focus on the summary.
    showErrors(errors) {
      const items = errors.map(([name, message]) => {
        const control = name ? this.shadow.getElementById(name) : null;
        const field = control && control.closest(".field");
        if (!field) { return h("li", {}, message); }
        field.classList.add("field-invalid");
        // The message goes above the control (or the first box of a group), under the label.
        const id = `${name}-error`;
        field.querySelector(".radio, .checkbox, ul.sessions, input, select").before(
          h("p", { class: "field-error", id }, this.texts.error_prefix
            ? h("span", { class: "visually-hidden" }, `${this.texts.error_prefix} `) : null,
          message));
        const controls = field.querySelectorAll("input, select");
        for (const each of controls) {
          each.setAttribute("aria-invalid", "true");
          const ids = (each.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
          each.setAttribute("aria-describedby", [...ids, id].join(" "));
        }
        const link = h("a", { href: `#${name}` }, message);
        link.addEventListener("click", (event) => {
          event.preventDefault();
          (field.querySelector("legend") || field.querySelector("label") || control)
            .scrollIntoView({ block: "start" });
          control.focus({ preventScroll: true });
        });
        return h("li", {}, link);
      });
      const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1",
                                 "aria-labelledby": "error-summary-title" },
        h("h3", { id: "error-summary-title" }, this.texts.error_summary_title),
        h("ul", {}, items));
      this.summary.replaceChildren(summary);
      summary.scrollIntoView({ block: "start" });
      summary.focus({ preventScroll: true });
    }

    // What happens next, in the live region; the form has done its work.
    accepted(answer, email) {
      this.form.hidden = true;
      this.outcome.replaceChildren(h("h3", {}, this.texts.accepted_title),
        h("p", {}, fill(this.texts.accepted_body, { email: answer.email || email })));
      this.outcome.focus();
    }
  }

  function hint(field) {
    return field.hint ? h("p", { class: "hint", id: `${field.name}-hint` }, field.hint) : null;
  }

  function described(field) {
    return field.hint ? `${field.name}-hint` : null;
  }

  function renderField(field, chosen) {
    const base = { name: field.name, "aria-describedby": described(field),
                   required: Boolean(field.required) };
    if (field.type === "checkbox") {
      // The notice's link under the box, not inside its label: a click on it must not tick.
      return h("div", { class: "field" },
        h("div", { class: "checkbox" },
          h("input", { ...base, id: field.name, type: "checkbox", value: "y" }),
          h("label", { for: field.name }, field.label)),
        hint(field), field.link ? h("p", { class: "notice-link" }, h("a", {
          href: field.link.url, target: "_blank", rel: "noopener" }, field.link.text)) : null);
    }
    if (field.type === "radio") {
      return h("div", { class: "field" },
        h("fieldset", { "aria-describedby": described(field) },
          h("legend", {}, field.label), hint(field),
          (field.options || []).map((option, index) => {
            const id = index ? `${field.name}-${option.value}` : field.name;
            return h("div", { class: "radio" },
              h("input", { type: "radio", id, name: field.name, value: option.value,
                           checked: option.value === chosen }),
              h("label", { for: id }, option.label));
          })));
    }
    let control;
    if (field.type === "select") {
      control = h("select", { ...base, id: field.name, autocomplete: field.autocomplete },
        field.placeholder || !(field.options || []).some((o) => o.value === chosen)
          ? h("option", { value: "" }, field.placeholder || "") : null,
        (field.options || []).map((option) => h("option", {
          value: option.value, selected: option.value === chosen }, option.label)));
    } else {
      // type="text" for addresses too, as on our page: Chromium rewrites an email input's
      // domain by IDNA 2003 rules before sending; inputmode keeps the phone's email keyboard.
      const email = field.type === "email";
      control = h("input", { ...base, id: field.name, type: "text",
        inputmode: email ? "email" : null, autocapitalize: email ? "off" : null,
        spellcheck: email || field.name === "name" ? "false" : null,
        maxlength: field.maxlength, autocomplete: field.autocomplete });
    }
    return h("div", { class: "field" }, h("label", { for: field.name }, field.label), hint(field),
      control);
  }

  // The field people never fill in, out of sight and out of the tab order; bots fill it.
  function honeypot(name, texts) {
    if (!name) { return null; }
    return h("div", { class: "honeypot", "aria-hidden": "true" },
      h("label", { for: name }, texts.honeypot_label || name),
      h("input", { id: name, name, tabindex: "-1", autocomplete: "off", value: "" }));
  }

  // <forum-signup event="slug">: one session's title, time, seats and its sign-up form.
  class ForumSignup extends SignUpWidget {
    async start() {
      const slug = this.getAttribute("event") || "";
      const form = await formFor(this.language);
      this.texts = form.texts;
      const session = await getJSON(`/api/v1/events/${encodeURIComponent(slug)}`,
        this.language);
      this.zone = session.timezone;
      const heading = [
        h("h2", { lang: session.language }, session.title),
        h("p", {}, when(session, this.language)),
        h("p", { class: "zone-note" }, this.texts.times_in_your_zone),
      ];
      if (session.status !== "scheduled") {
        this.show(...heading, h("p", { class: "notice" },
          session.status === "cancelled" ? this.texts.cancelled : this.texts.ended));
        return;
      }
      const seats = session.seats_left;
      const full = seats === 0;
      const seatsText = seats === null || seats === undefined ? this.texts.unlimited
        : full ? this.texts.full_waiting_list : fill(this.texts.seats_left, { n: seats });
      const submit = full ? this.texts.join_waiting_list || this.texts.submit : this.texts.submit;
      this.show(...heading, h("p", { class: full ? "notice" : "seats" }, seatsText),
        ...this.renderForm(form, `/api/v1/events/${encodeURIComponent(slug)}/registrations`,
          submit, () => ({})),
        h("p", {}, h("a", { href: session.page_url }, this.texts.hosted_link)));
    }
  }

  // <forum-programme filter-language="ja" filter-kind=… filter-pillar=…>: the upcoming sessions,
  // each with a box to tick, and one form for all the ticked ones.
  class ForumProgramme extends SignUpWidget {
    async start() {
      const form = await formFor(this.language);
      this.texts = form.texts;
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const query = new URLSearchParams({ from: now });
      let filtered = false;
      for (const name of ["language", "kind", "pillar"]) {
        const value = this.getAttribute(`filter-${name}`);
        if (value) { query.set(name, value); filtered = true; }
      }
      const answer = await getJSON(`/api/v1/events?${query}`, this.language);
      const sessions = (Array.isArray(answer) ? answer : answer.events || [])
        .filter((session) => session.status === "scheduled");
      if (!sessions.length) {
        this.show(h("p", { class: "notice" },
          filtered ? this.texts.no_sessions_filtered : this.texts.no_sessions),
          h("p", {}, h("a", { href: `${ORIGIN}/` }, this.texts.hosted_link)));
        return;
      }
      const choices = h("fieldset", { class: "field" },
        h("legend", {}, this.texts.choose_sessions),
        h("ul", { class: "sessions" }, sessions.map((session, index) => {
          // The first box carries the field's id, so the error summary's link lands on it.
          const id = index ? `events-${session.slug}` : "events";
          const seats = session.seats_left === 0 ? this.texts.full_waiting_list : null;
          return h("li", {}, h("div", { class: "checkbox" },
            h("input", { type: "checkbox", id, name: "events", value: session.slug }),
            h("label", { for: id }, h("strong", { lang: session.language }, session.title),
              h("br"), when(session, this.language), seats ? h("br") : null, seats)));
        })));
      this.zone = sessions[0].timezone;
      const chosen = () => ({ events: [...choices.querySelectorAll("input:checked")]
        .map((box) => box.value) });
      this.show(h("p", { class: "zone-note" }, this.texts.times_in_your_zone),
        ...this.renderForm(form, "/api/v1/registrations", this.texts.submit_several, chosen,
          choices));
    }
  }

  if (!customElements.get("forum-signup")) { customElements.define("forum-signup", ForumSignup); }
  if (!customElements.get("forum-programme")) {
    customElements.define("forum-programme", ForumProgramme);
  }
})();
