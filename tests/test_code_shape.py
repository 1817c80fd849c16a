"""How the code reads: rules a reviewer would otherwise have to check by hand."""

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
# Views parse the request, call a service and commit once; undoing work is the services' part.
CONSOLE_VIEW_MODULES = ("organisers/events.py", "organisers/views.py", "organisers/profile.py",
                        "organisers/attendees.py", "organisers/messages.py")
TRANSACTION_CALLS = {"rollback", "begin_nested", "flush"}


def test_console_modules_stay_under_400_lines():
    long = {path.name: lines for path in sorted((ROOT / "organisers").glob("*.py"))
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_console_views_leave_transactions_to_services():
    found = []
    for name in CONSOLE_VIEW_MODULES:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        found += [f"{name}:{node.lineno} {node.func.attr}" for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in TRANSACTION_CALLS]
    assert found == []


# A document outside the repository (the team's notes, an issue, a web page) that a comment
# would send the reader to: the comment must say the reason itself.
OUTSIDE_REFERENCE = re.compile(r"PITFALLS|DESIGN\.md|STYLE\.md|shared/|\bissue\s*#?\d+")
# A web address in a comment is a reference too; in a docstring it is usually an example.
WEB_ADDRESS = re.compile(r"https?://")
SKIPPED_FOLDERS = {".venv", ".git", "node_modules"}


def _comments_and_docstrings(path: Path):
    text = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string, True
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield getattr(node, "lineno", 1), docstring, False


def test_no_comment_points_to_a_document_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(ROOT.rglob("*.py"))
        if not SKIPPED_FOLDERS & set(path.relative_to(ROOT).parts)
        for line, text, is_comment in _comments_and_docstrings(path)
        if OUTSIDE_REFERENCE.search(text) or (is_comment and WEB_ADDRESS.search(text))
    ]
    assert found == []
