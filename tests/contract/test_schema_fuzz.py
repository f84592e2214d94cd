"""Every operation of /api/schema/, fuzzed in process: no input makes PAM answer 5xx, and every
answer keeps to the OpenAPI document (status codes, content types, response schemas).

Bounded for CI: a fixed number of examples per operation, derandomized so a failure reproduces.
A few objects exist beforehand (a connection with a jump host and a tunnel, an address-book
entry, a session, a token, a group mapping, a user), and path parameters name them, so updates
and actions reach the services instead of stopping at 404; deletions run last.
Targets stay on loopback: during the run the deny list covers every network but loopback, so
any host the fuzzer makes up is refused before PAM connects to it; host names (which would
need a DNS lookup) are replaced by a loopback address before the request is sent.
"""

import ipaddress

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role
from accounts.services.group_mappings import create_mapping
from connections.services.connections import create_connection
from sessions.services.sessions import create_session
from targets.addresses import deny_rules, refusal
from tests.factories import (
    make_address_book_folder,
    make_api_key,
    make_folder,
    make_user,
    make_user_token,
)

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
HOST_FIELDS = {"host", "hostname", "remoteHost", "jump_host"}


def everything_but_loopback():
    """A deny list that leaves only loopback addresses reachable."""
    networks = []
    for whole, loopback in zip((ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")), LOOPBACK):
        networks += whole.address_exclude(loopback)
    return [str(network) for network in networks]


def _loopback_hosts(value):
    """Replace every host name in a request body by 127.0.0.1; keep literal addresses."""
    if isinstance(value, list):
        return [_loopback_hosts(item) for item in value]
    if not isinstance(value, dict):
        return value
    fixed = {}
    for key, item in value.items():
        if key in HOST_FIELDS and isinstance(item, str) and item and not _is_address(item):
            item = "127.0.0.1"
        fixed[key] = _loopback_hosts(item)
    return fixed


def _is_address(text):
    try:
        ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def seed(admin):
    """Objects for path parameters to name; return ``{(path prefix, parameter): value}``."""
    folder = make_folder(admin, "fuzz-folder")
    hop = {"host": "127.0.0.2", "port": 22, "username": "hop", "password": "hop-pw"}
    tunnel = {"local_port": 40022, "remote_host": "127.0.0.1", "remote_port": 22}
    spec = {"name": "fuzz", "protocol": "ssh", "host": "127.0.0.1", "port": 22, "username": "u", "password": "pw"}
    connection = create_connection(
        actor=admin, spec={**spec, "group": folder, "jump_hosts": [hop], "tunnels": [tunnel]}
    )
    book = make_address_book_folder("fuzz-book")
    create_connection(actor=admin, spec={**spec, "name": "fuzz-entry", "group": book, "jump_hosts": [hop]})
    session, _ = create_session(actor=admin, session_type="ssh", host="127.0.0.1", port=22, username="u", password="pw")
    other = make_user("operator", email="fuzz-user@example.com")
    mapping = create_mapping(actor=admin, oidc_group="fuzz-group", role=Role.objects.get(pk="viewer"))
    own_token, _ = make_user_token(admin)
    other_token, _ = make_user_token(other)
    return {
        ("/api/connections/groups/", "id"): folder.pk,
        ("/api/connections/", "id"): connection.pk,
        ("/api/addressbook/", "scope"): book.scope,
        ("/api/addressbook/", "folder"): book.name,
        ("/api/addressbook/", "entry"): "fuzz-entry",
        ("/api/sessions/", "id"): str(session.pk),
        ("/api/users/", "email"): other.email,
        ("/api/admin/group-mappings/", "id"): mapping.pk,
        ("/api/admin/user-tokens/", "id"): other_token.pk,
        ("/api/me/tokens/", "id"): own_token.pk,
    }


def _existing(objects):
    """A hook making path parameters name the seeded objects (unknown ids only find 404)."""

    def map_path_parameters(context, parameters):
        path = context.operation.path
        known = dict(parameters or {})
        for name in known:
            prefixes = [prefix for prefix, param in objects if param == name and path.startswith(prefix)]
            if prefixes:
                known[name] = objects[(max(prefixes, key=len), name)]
        return known

    return map_path_parameters


def _load(token, objects):
    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/", WSGIHandler(), config=config, headers={"Authorization": f"Bearer {token}"}
    )
    schema.hook("map_body")(lambda context, body: _loopback_hosts(body))
    schema.hook("map_path_parameters")(_existing(objects))
    return schema


@pytest.fixture
def loopback_only(settings):
    settings.TARGET_DENYLIST = everything_but_loopback()
    deny_rules.cache_clear()
    yield
    deny_rules.cache_clear()


@pytest.fixture
def in_test_transaction():
    """Keep the test's database connection open across requests, as Django's test client does."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def as_admin(db, loopback_only, in_test_transaction):
    admin = make_user("admin")
    _, token = make_api_key(admin)
    return _load(token, seed(admin))


@pytest.fixture
def as_operator(db, loopback_only, in_test_transaction):
    """An operator among an admin's objects: the refusals must keep to the document too."""
    objects = seed(make_user("admin"))
    _, token = make_api_key(make_user("operator"))
    return _load(token, objects)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def fuzz(schema):
    """Run every operation with valid and invalid input; return one line per failing operation."""
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in sorted(operations, key=lambda operation: operation.method == "delete"):
        # Invalid bodies find the most; invalid path and query strings mostly just miss the route.
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if operation.body else (GenerationMode.POSITIVE,)
        for mode in modes:

            @FUZZ_SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                case.call_and_validate(checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid: an operation without parameters or body
            except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported together
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def test_no_operation_fails_as_admin(as_admin):
    failures = fuzz(as_admin)
    assert not failures, "\n\n".join(failures)


def test_no_operation_fails_as_operator(as_operator):
    failures = fuzz(as_operator)
    assert not failures, "\n\n".join(failures)


def test_fuzzing_reaches_only_loopback(loopback_only):
    """The deny list of the runs above leaves loopback, and nothing else, reachable."""
    assert refusal(["127.0.0.1"], 22) == refusal(["::1"], 22) == ""
    for address in ("10.0.0.1", "8.8.8.8", "169.254.169.254", "::2", "2001:db8::1", "fe80::1"):
        assert refusal([address], 22), address
    assert _loopback_hosts({"checks": [{"host": "example.com"}, {"host": "10.0.0.1"}]}) == {
        "checks": [{"host": "127.0.0.1"}, {"host": "10.0.0.1"}]
    }
