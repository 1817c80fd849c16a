"""Every message people read on the public pages and in emails has its Japanese translation,
and the committed catalogues hold what the code says today (`make translations`)."""

import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}")


def read(path: Path, locale=None):
    with path.open("rb") as file:
        return read_po(file, locale=locale)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The messages of the code as it is now, extracted with the Makefile's own command."""
    folder = tmp_path_factory.mktemp("messages")
    subprocess.run(
        ["make", "--silent", "--no-print-directory", "messages",
         f"POT={folder / 'messages.pot'}", f"CONSOLE_POT={folder / 'console.pot'}"],
        cwd=ROOT, check=True,
    )
    return read(folder / "messages.pot"), read(folder / "console.pot")


def ids(catalog) -> set:
    return {message.id for message in catalog if message.id}


def test_every_public_message_has_a_japanese_translation(extracted):
    messages, _ = extracted
    japanese = read(TRANSLATIONS / "ja" / "LC_MESSAGES" / "messages.po", locale="ja")
    missing = sorted(str(message_id) for message_id in ids(messages)
                     if not (japanese.get(message_id) and japanese.get(message_id).string))
    assert not missing, "untranslated in ja (run `make translations`, then translate):\n" + \
        "\n".join(missing)
    fuzzy = [str(message.id) for message in japanese if message.id and message.fuzzy]
    assert not fuzzy, f"fuzzy in ja: {fuzzy}"


def test_the_committed_catalogues_hold_what_the_code_says(extracted):
    messages, console = extracted
    assert ids(read(TRANSLATIONS / "messages.pot")) == ids(messages), "run `make translations`"
    assert ids(read(TRANSLATIONS / "console.pot")) == ids(console), "run `make translations`"
    for language in ("en", "ja"):
        catalogue = read(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", locale=language)
        assert ids(catalogue) == ids(messages), f"{language}: run `make translations`"


def test_japanese_translations_keep_every_placeholder():
    japanese = read(TRANSLATIONS / "ja" / "LC_MESSAGES" / "messages.po", locale="ja")
    for message in japanese:
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        targets = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set().union(*(PLACEHOLDER.findall(source) for source in sources))
        for target in targets:
            assert set(PLACEHOLDER.findall(target)) == wanted, (message.id, target)


def test_no_template_or_module_branches_on_the_language():
    # Words differ by language through the catalogues, never through an if.
    branch = re.compile(r"""(lang|language)\s*==\s*['"](ja|en)['"]""")
    offenders = [
        str(path.relative_to(ROOT))
        for pattern in ("templates/**/*.html", "templates/**/*.txt", "registration/*.py",
                        "notifications/*.py", "app.py")
        for path in ROOT.glob(pattern)
        if branch.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_no_template_compares_anything_with_a_language():
    # A template never asks which language it is in, nor compares a value with one: a choice
    # of languages is marked through fields.options, the switch through language.switch().
    comparison = re.compile(
        r"(\blang|language)(\.data)?\s*[!=]=|[!=]=\s*(page_language\(\)|[\w.]*\blang(uage)?\b)")
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in ROOT.glob("templates/**/*.*")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if comparison.search(line)]
    assert not offenders, offenders
