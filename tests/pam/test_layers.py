"""The apps' layering, read from the source: who may import whom.

targets (the SSH client, routes, host keys, the deny list) and nodes (the registry of the
processes holding live work) lie below connections and sessions; connections lies below
sessions; pam/api/ (the routers) sits above every app. An
import against that order, in any spelling (``import x``, ``from x import y``, a relative
import, ``importlib.import_module("x")``), fails here.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every first-party package but the project package and the tests.
APPS = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in ("pam", "tests"))
BELOW = {"connections": ("sessions",), "nodes": ("connections", "sessions"), "targets": ("connections", "sessions")}
FORBIDDEN = {app: ("pam.api", *BELOW.get(app, ())) for app in APPS}


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source, module, is_package=False):
    """Every module name ``source`` (the text of ``module``) imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                base = ".".join([*anchor, *([base] if base else [])])
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.append(node.args[0].value)
    return names


def _is_within(name, forbidden):
    return name == forbidden or name.startswith(forbidden + ".")


def violations(app):
    found = []
    for path in sorted((ROOT / app).rglob("*.py")):
        module = _module_name(path)
        for name in imported_modules(path.read_text(), module, path.name == "__init__.py"):
            for forbidden in FORBIDDEN.get(app, ()):
                if _is_within(name, forbidden):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    return list(dict.fromkeys(found))


def test_every_app_is_checked():
    assert {"accounts", "connections", "nodes", "recordings", "sessions", "sshserver", "targets"} <= set(APPS)
    assert FORBIDDEN["targets"] == ("pam.api", "connections", "sessions")
    assert FORBIDDEN["nodes"] == ("pam.api", "connections", "sessions")


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_app_imports_nothing_above_it(app):
    assert violations(app) == []


@pytest.mark.parametrize(
    "source, module",
    [
        ("import sessions", "connections.views"),
        ("import sessions.services.sessions as s", "connections.views"),
        ("from sessions import choices", "connections.views"),
        ("from sessions.choices import TERMINAL_TYPES", "connections.api.views"),
        ("from ...sessions import choices", "connections.api.views"),
        ("def f():\n    from sessions.models import Session", "connections.tunnels"),
        ("import importlib\nimportlib.import_module('sessions.models')", "connections.tasks"),
        ("__import__('sessions')", "connections.tasks"),
    ],
)
def test_every_spelling_of_an_import_is_seen(source, module):
    assert any(_is_within(name, "sessions") for name in imported_modules(source, module))


def test_django_db_connections_is_not_the_connections_app():
    names = imported_modules("from django.db import connections", "targets.ssh")
    assert not any(_is_within(name, "connections") for name in names)
