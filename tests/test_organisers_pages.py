"""The console's pages as people meet them: every word a message of console.pot (English today,
ready for a translation), one h1 and a title of its own on each page, a named nav, and wide
tables that scroll inside a labelled region instead of the page."""

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.pofile import read_po

from tests.conftest import make_event, make_registration, page_csrf

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_TEMPLATES = sorted((ROOT / "templates" / "organisers").glob("*.html"))
# Words that are names, not sentences: file formats and the table's "#" column.
NOT_MESSAGES = {"CSV", "Excel", "#"}
ATTRIBUTES_PEOPLE_READ = re.compile(
    r"""\b(aria-label|title|placeholder|alt)="([^"]*)\"""")


def console_messages() -> set[str]:
    with (ROOT / "translations" / "console.pot").open("rb") as file:
        catalog = read_po(file)
    ids = set()
    for message in catalog:
        ids.update(message.id if isinstance(message.id, tuple) else (message.id,))
    return ids


def unmarked_text(source: str) -> list[str]:
    """The words of a template that no _() or trans block carries."""
    source = re.sub(r"{#.*?#}", " ", source, flags=re.S)
    # A class name, not text: the block that widens the console's <main>.
    source = re.sub(r"{%\s*block main_class\s*%}.*?{%\s*endblock\s*%}", " ", source)
    source = re.sub(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", " ", source, flags=re.S)
    attributes = [value for _, value in ATTRIBUTES_PEOPLE_READ.findall(source)
                  if re.search(r"[A-Za-z]", re.sub(r"{{.*?}}", "", value))]
    source = re.sub(r"{{.*?}}|{%.*?%}", " ", source, flags=re.S)
    source = re.sub(r"<[^>]*>", " ", source)
    words = [word for word in re.findall(r"[^\s·›:;,.()…–-]+", source)
             if re.search(r"[A-Za-z]", word) and word not in NOT_MESSAGES]
    return attributes + words


def test_the_checker_finds_text_left_unmarked():
    assert unmarked_text("<h1>Events</h1>") == ["Events"]
    assert unmarked_text('<div aria-label="Wide table">') == ["Wide table"]
    assert unmarked_text("<h1>{{ _('Events') }}</h1>{# a note #}") == []
    assert unmarked_text("<p>{% trans n=1 %}{{ n }} seat{% endtrans %}</p>") == []
    assert unmarked_text('<input value="{{ token }}" aria-label="{{ _("Token") }}"> · ›') == []


def test_every_word_of_every_console_template_is_marked():
    assert CONSOLE_TEMPLATES
    unmarked = {path.name: words for path in CONSOLE_TEMPLATES
                if (words := unmarked_text(path.read_text(encoding="utf-8")))}
    assert not unmarked, f"wrap these in _() or {{% trans %}}: {unmarked}"


# Calls whose text arguments an organiser reads: each must be a message (_(), ngettext...).
READ_BY_PEOPLE = {"flash", "abort", "ReportRejected", "UploadRefused"}
READ_BY_PEOPLE_KEYWORDS = {"error", "notice", "description"}


def bare_text(tree) -> list[int]:
    """Line numbers of literal text (a string or f-string) handed straight to people."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        values = [k.value for k in node.keywords if k.arg in READ_BY_PEOPLE_KEYWORDS]
        if name in READ_BY_PEOPLE:
            values += node.args
        lines += [value.lineno for value in values
                  if isinstance(value, ast.JoinedStr)
                  or (isinstance(value, ast.Constant) and isinstance(value.value, str))]
    return lines


def test_the_checker_finds_literal_text_in_python():
    assert bare_text(ast.parse('flash(f"Event {slug} created.")')) == [1]
    assert bare_text(ast.parse('render(422, error="Choose a file.")')) == [1]
    assert bare_text(ast.parse('flash(_("Event %(slug)s created.", slug=slug))')) == []


def test_console_modules_hand_people_messages_not_literal_text():
    found = {path.name: lines for path in sorted((ROOT / "organisers").glob("*.py"))
             if (lines := bare_text(ast.parse(path.read_text(encoding="utf-8"))))}
    assert not found, f"wrap in gettext: {found}"


def test_console_pot_holds_the_consoles_words():
    messages = console_messages()
    # The dashboard's heading, captions and columns; the nav; a flash; a form label; an error.
    for text in ("Events", "Upcoming and running", "Past", "Emails sent", "Capacity",
                 "Audit log", "Sign out", "Event %(slug)s created.", "Time zone", "Start",
                 "Wrong email or password.", "%(num)d failed message will be sent again shortly.",
                 "Nothing was changed: %(count)s problem in %(filename)s"):
        assert text in messages, text
    # The console has its own catalogue: its words never wait for a Japanese translation.
    with (ROOT / "translations" / "messages.pot").open("rb") as file:
        public = {message.id for message in read_po(file)}
    assert "Upcoming and running" not in public


class Outline(HTMLParser):
    """A page's title, h1 count, named navs and scroll regions."""

    def __init__(self):
        super().__init__()
        self.title, self.h1, self.navs, self.regions, self.skip_links = "", 0, [], [], 0
        self._in_title = False
        self._tables_in = []  # a stack: the region each open table is in, or None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "h1":
            self.h1 += 1
        elif tag == "nav":
            self.navs.append(attrs.get("aria-label"))
        elif tag == "a" and attrs.get("class") == "skip-link" and attrs.get("href") == "#main":
            self.skip_links += 1
        elif tag == "div" and "table-scroll" in (attrs.get("class") or ""):
            self.regions.append(attrs)

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def outline(response) -> Outline:
    assert response.status_code in (200, 409, 422), response.status_code
    parsed = Outline()
    parsed.feed(response.get_data(as_text=True))
    return parsed


def test_every_console_page_has_one_h1_its_own_title_a_named_nav_and_the_skip_link(admin):
    event = make_event(slug="cities-and-heat", title="Cities and heat")
    make_registration(event)
    pages = {path: admin.get(path) for path in (
        "/admin/", "/admin/events/new", f"/admin/events/{event.slug}",
        f"/admin/events/{event.slug}/attendance", f"/admin/events/{event.slug}/duplicate",
        "/admin/audit", "/admin/programme", "/admin/profile")}
    token = page_csrf(admin, "/admin/events/new")
    pages["new, refused"] = admin.post("/admin/events/new", data={"csrf_token": token})
    titles = {}
    for path, response in pages.items():
        page = outline(response)
        assert page.h1 == 1, path
        assert page.skip_links == 1, path
        assert "Console" in page.navs, (path, page.navs)
        assert all(page.navs), (path, page.navs)  # every nav has a name
        assert page.title.strip().endswith("· Organisers · Virtual Forum"), page.title
        titles[path] = page.title.strip()
    assert len(set(titles.values())) == len(titles), titles
    assert titles["new, refused"].startswith("Error: ")
    assert titles[f"/admin/events/{event.slug}"].startswith("Cities and heat ·")


def test_the_sign_in_page_has_its_own_title_and_one_h1(client):
    page = outline(client.get("/admin/login"))
    assert page.h1 == 1 and page.title.strip().startswith("Sign in · Organisers")


def test_wide_tables_scroll_in_a_focusable_region_with_a_name(admin):
    event = make_event(slug="cities-and-heat", title="Cities and heat")
    make_registration(event)
    for path in ("/admin/", f"/admin/events/{event.slug}", "/admin/audit"):
        html = admin.get(path).get_data(as_text=True)
        page = outline(admin.get(path))
        assert page.regions, path
        for region in page.regions:
            assert region.get("role") == "region" and region.get("tabindex") == "0", region
            assert region.get("aria-label"), region
        # Every table of these pages sits inside a region.
        assert html.count("<table") == html.count('class="table-scroll"'), path


def test_the_event_page_names_the_sessions_language_in_that_language(admin):
    event = make_event(slug="toshi-to-netsu", title="都市と暑さ", language="ja")
    html = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    assert '<span lang="ja">日本語</span>' in html
    assert '<h1><span lang="ja">都市と暑さ</span>' in html
