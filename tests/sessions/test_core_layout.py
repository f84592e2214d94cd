"""The session core's layout, read from the source (docs/architecture.md).

- The node runtime, the live session and the transports write no row: every state change goes
  through sessions.services (lifecycle) and recordings.services, so none of them touches a
  model manager or the audit log.
- Only the transport registry knows which protocol opens which session type: nobody else
  compares a session type with a protocol.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = [ROOT / "sessions" / "live.py", *sorted((ROOT / "sessions" / "runtime").glob("*.py")),
        *sorted((ROOT / "sessions" / "transports").glob("*.py"))]
REGISTRY = {ROOT / "sessions" / "transports" / "__init__.py", ROOT / "sessions" / "choices.py"}
SESSION_TYPES = {"ssh", "telnet", "rdp", "vnc", "web"}


def orm_uses(source):
    """Model managers, model imports and audit writes in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("objects", "_default_manager"):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module and (
            node.module.endswith(".models") or node.module == "accounts.services.audit"
        ):
            found.append(f"line {node.lineno}: from {node.module}")
    return found


def _names_a_session_type(node):
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "SessionType":
        return node.attr.isupper()  # a member (SessionType.SSH), not SessionType.values
    return isinstance(node, ast.Constant) and node.value in SESSION_TYPES


def _mentions_session_type(node):
    return any(
        (isinstance(n, ast.Attribute) and n.attr == "session_type") or (isinstance(n, ast.Name) and n.id == "session_type")
        for n in ast.walk(node)
    )


def session_type_branches(source):
    """Comparisons of a session type with a protocol: ``x.session_type == SessionType.SSH`` and kin."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            protocols = [s for s in sides if _names_a_session_type(s)] + [
                e for s in sides if isinstance(s, (ast.Tuple, ast.List, ast.Set)) for e in s.elts if _names_a_session_type(e)
            ]
            uses_type = any(isinstance(s, ast.Attribute) and s.attr == "session_type" for s in sides) or any(
                _mentions_session_type(s) for s in sides
            )
            if protocols and (uses_type or any(isinstance(p, ast.Attribute) for p in protocols)):
                found.append(f"line {node.lineno}")
    return found


def first_party_modules():
    for path in sorted(ROOT.glob("*/**/*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in ("tests", "bench", ".venv", "node_modules") or "migrations" in parts or path in REGISTRY:
            continue
        yield path


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_session_core_writes_no_row(path):
    assert orm_uses(path.read_text()) == []


def test_no_module_but_the_registry_branches_on_a_session_type():
    found = {str(p.relative_to(ROOT)): b for p in first_party_modules() if (b := session_type_branches(p.read_text()))}
    assert found == {}


@pytest.mark.parametrize(
    "source",
    [
        "if row.session_type == SessionType.SSH: pass",
        "if self.row.session_type != SessionType.TELNET: pass",
        "if session_type in (SessionType.SSH, SessionType.TELNET): pass",
        "if session.session_type == 'ssh': pass",
    ],
)
def test_each_spelling_of_a_branch_is_seen(source):
    assert session_type_branches(source)


@pytest.mark.parametrize(
    "source", ["Session.objects.filter(pk=1).update(status='ended')", "from sessions.models import Viewer"]
)
def test_each_row_write_is_seen(source):
    assert orm_uses(source)
