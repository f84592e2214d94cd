"""session-broker group-to-role mappings: /api/admin/group-mappings and the role they give."""

import pytest

from accounts.models import GroupRoleMapping, Role
from accounts.services.group_mappings import role_for_groups

pytestmark = pytest.mark.django_db

URL = "/api/admin/group-mappings"


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 200)])
def test_list_by_role(client_as, role, status):
    assert client_as(role).get(URL).status_code == status


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 201)])
def test_create_by_role(client_as, role, status):
    response = client_as(role).post(URL, {"oidc_group": "engineering", "role": "poweruser"}, format="json")
    assert response.status_code == status
    assert GroupRoleMapping.objects.exists() is (status == 201)


def test_create_list_update_delete(admin_client):
    created = admin_client.post(URL, {"oidc_group": "engineering", "role": "poweruser"}, format="json").json()
    assert {"id", "oidc_group", "role"} <= set(created) and created["role"] == "poweruser"
    assert [m["oidc_group"] for m in admin_client.get(URL).json()] == ["engineering"]
    updated = admin_client.put(f"{URL}/{created['id']}", {"oidc_group": "engineering", "role": "admin"}, format="json")
    assert updated.status_code == 200 and updated.json()["role"] == "admin"
    assert admin_client.delete(f"{URL}/{created['id']}").status_code == 204
    assert not GroupRoleMapping.objects.exists()


def test_duplicate_group_is_409(admin_client):
    admin_client.post(URL, {"oidc_group": "engineering", "role": "poweruser"}, format="json")
    response = admin_client.post(URL, {"oidc_group": "engineering", "role": "operator"}, format="json")
    assert response.status_code == 409 and "already exists" in response.json()["error"]
    other = admin_client.post(URL, {"oidc_group": "ops", "role": "operator"}, format="json").json()
    renamed = admin_client.put(f"{URL}/{other['id']}", {"oidc_group": "engineering", "role": "operator"}, format="json")
    assert renamed.status_code == 409
    assert GroupRoleMapping.objects.get(pk=other["id"]).oidc_group == "ops"


@pytest.mark.parametrize(
    "body", [{"oidc_group": "", "role": "viewer"}, {"oidc_group": "x", "role": "emperor"}, {"oidc_group": 5, "role": "viewer"},
             {"oidc_group": "x" * 151, "role": "viewer"}, {"role": "viewer"}, {"oidc_group": "x"}]
)
def test_bad_mapping_is_400(admin_client, body):
    assert admin_client.post(URL, body, format="json").status_code == 400
    assert not GroupRoleMapping.objects.exists()


def test_unknown_mapping_is_404(admin_client):
    assert admin_client.put(f"{URL}/999", {"oidc_group": "x", "role": "viewer"}, format="json").status_code == 404


def test_highest_mapped_role_wins():
    Role.objects.create(name="log-readers", permissions=["audit.view", "recordings.view"])
    for group, role in [("a", "viewer"), ("b", "poweruser"), ("c", "operator"), ("d", "log-readers")]:
        GroupRoleMapping.objects.create(oidc_group=group, role_id=role)
    assert role_for_groups(["a", "c"]).pk == "operator"
    assert role_for_groups(["a", "b", "c", "d"]).pk == "poweruser"
    assert role_for_groups(["a", "d"]).pk == "log-readers"
    assert role_for_groups(["zzz"]) is None
    assert role_for_groups([]) is None


def test_mapped_role_cannot_be_deleted():
    from accounts.services.roles import delete_role
    from pam.exceptions import Conflict

    role = Role.objects.create(name="deployer", permissions=["sessions.connect"])
    GroupRoleMapping.objects.create(oidc_group="deploy", role=role)
    with pytest.raises(Conflict):
        delete_role(role=role, actor=None)
