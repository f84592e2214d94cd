import pytest

from accounts import roles
from accounts.models import Role
from accounts.permissions import can, effective_permissions, effective_role
from accounts.roles import Perm
from accounts.services.roles import delete_role, save_role
from pam.exceptions import Conflict, InvalidInput
from tests.factories import make_role, make_user, make_user_token

pytestmark = pytest.mark.django_db


def test_builtin_ladder_is_monotonic():
    ladder = [roles.BUILTIN_ROLES[name] for name in roles.LADDER]
    for lower, higher in zip(ladder, ladder[1:]):
        assert lower < higher


def test_the_auditor_reads_every_trail_and_opens_nothing():
    auditor = roles.BUILTIN_ROLES[roles.AUDITOR]
    assert {Perm.RECORDINGS_VIEW_ANY, Perm.AUDIT_VIEW, Perm.SESSIONS_WATCH_ANY} <= auditor
    opening = {Perm.SESSIONS_CREATE, Perm.SESSIONS_CONNECT, Perm.CONNECTIONS_REVEAL, Perm.RECORDINGS_DELETE}
    assert not auditor & opening
    assert auditor < roles.BUILTIN_ROLES[roles.ADMIN]


def test_admin_holds_every_permission():
    assert roles.BUILTIN_ROLES[roles.ADMIN] == frozenset(Perm)


def test_builtin_roles_exist_as_rows():
    assert set(Role.objects.filter(builtin=True).values_list("name", flat=True)) == set(roles.BUILTIN_ROLE_NAMES)


@pytest.mark.parametrize(
    "role, perm, allowed",
    [
        ("viewer", Perm.SESSIONS_VIEW, False),
        ("operator", Perm.SESSIONS_VIEW, True),
        ("operator", Perm.SESSIONS_CREATE, False),
        ("poweruser", Perm.SESSIONS_CREATE, True),
        ("poweruser", Perm.TOKENS_MANAGE_OWN, True),
        ("operator", Perm.TOKENS_MANAGE_OWN, False),
        ("poweruser", Perm.CONNECTIONS_EDIT_ANY, False),
        ("admin", Perm.CONNECTIONS_EDIT_ANY, True),
        ("poweruser", Perm.USERS_MANAGE, False),
        ("admin", Perm.USERS_MANAGE, True),
    ],
)
def test_builtin_role_grants(role, perm, allowed):
    assert can(make_user(role), perm) is allowed


def test_disabled_user_can_do_nothing():
    user = make_user("admin", active=False)
    assert effective_permissions(user) == frozenset()


def test_custom_role_grants_exactly_its_permissions():
    auditor = make_role("log-readers", [Perm.AUDIT_VIEW, Perm.RECORDINGS_VIEW])
    user = make_user(auditor.name)
    assert effective_permissions(user) == {Perm.AUDIT_VIEW, Perm.RECORDINGS_VIEW}
    assert not can(user, Perm.USERS_MANAGE)


def test_token_cap_intersects_role():
    user = make_user("poweruser")
    user.token_cap = Role.objects.get(name="operator")
    assert not can(user, Perm.SESSIONS_CREATE)
    assert can(user, Perm.SESSIONS_VIEW)
    assert effective_role(user) == "operator"


def test_lowered_role_wins_over_a_higher_cap():
    user = make_user("admin")
    token, _ = make_user_token(user, max_role=Role.objects.get(name="poweruser"))
    user.role_id = "operator"
    user.save()
    user.token_cap = token.max_role
    assert not can(user, Perm.SESSIONS_CREATE)
    assert effective_role(user) == "operator"


def test_save_role_rejects_unknown_permission():
    with pytest.raises(InvalidInput):
        save_role(role=Role(name="odd", permissions=["connections.fly"]), actor=None)
    assert not Role.objects.filter(name="odd").exists()


def test_builtin_role_cannot_be_changed_or_deleted():
    viewer = Role.objects.get(name="viewer")
    with pytest.raises(InvalidInput):
        save_role(role=viewer, actor=None)
    with pytest.raises(InvalidInput):
        delete_role(role=viewer, actor=None)


def test_assigned_custom_role_cannot_be_deleted():
    role = make_role("deployer", [Perm.SESSIONS_CONNECT])
    make_user(role.name)
    with pytest.raises(Conflict):
        delete_role(role=role, actor=None)
    assert Role.objects.filter(name="deployer").exists()


def test_unused_custom_role_is_deleted():
    role = make_role("temp", [Perm.SESSIONS_CONNECT])
    delete_role(role=role, actor=None)
    assert not Role.objects.filter(name="temp").exists()
