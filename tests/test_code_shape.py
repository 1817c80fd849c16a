"""How the code reads: rules a reviewer would otherwise have to check by hand."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
# Views parse the request, call a service and commit once; undoing work is the services' part.
CONSOLE_VIEW_MODULES = ("organisers/events.py", "organisers/views.py")
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
