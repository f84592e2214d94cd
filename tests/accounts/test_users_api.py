import pytest
from django.test import Client

from accounts.choices import AuditAction
from accounts.models import ApiKey, AuditEvent, LoginSession, User
from tests.conftest import bearer
from tests.factories import PASSWORD, make_api_key, make_user, make_user_token

pytestmark = pytest.mark.django_db

ROLE_MATRIX = [("viewer", 403), ("operator", 403), ("poweruser", 403)]


def browser_login(user):
    """Sign in through the real login form, as a browser would."""
    client = Client()
    response = client.post("/login", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, "login failed"
    return client


@pytest.mark.parametrize("role, status", [*ROLE_MATRIX, ("admin", 200)])
def test_list_users_by_role(client_as, role, status):
    assert client_as(role).get("/api/users").status_code == status


def test_list_users_shape_and_filters(admin_client):
    make_user("operator", username="carol", groups=["engineering"], display_name="Carol C")
    make_user("viewer", username="dave", active=False)
    users = {u["username"]: u for u in admin_client.get("/api/users").json()}
    carol = users["carol"]
    assert carol["groups"] == ["engineering"] and carol["role"] == "operator" and carol["name"] == "Carol C"
    assert carol["disabled"] is False and users["dave"]["disabled"] is True
    assert "password" not in carol
    assert [u["username"] for u in admin_client.get("/api/users?role=viewer").json()] == ["dave"]
    assert [u["username"] for u in admin_client.get("/api/users?disabled=true").json()] == ["dave"]
    assert [u["username"] for u in admin_client.get("/api/users?search=carol").json()] == ["carol"]


def test_list_users_query_count_is_constant(admin_client, django_assert_max_num_queries):
    for _ in range(20):
        make_user("operator", groups=["a", "b"])
    with django_assert_max_num_queries(6):
        assert len(admin_client.get("/api/users").json()) == 21


@pytest.mark.parametrize("role, status", [*ROLE_MATRIX, ("admin", 200)])
def test_set_role_by_role(client_as, role, status):
    target = make_user("viewer")
    response = client_as(role).put(f"/api/users/{target.email}/role", {"role": "poweruser"}, format="json")
    assert response.status_code == status
    target.refresh_from_db()
    assert target.role_id == ("poweruser" if status == 200 else "viewer")


def test_set_role_takes_effect_on_next_request(admin_client):
    target = make_user("viewer")
    _, token = make_user_token(make_user("admin"), name="t")  # unrelated admin token still works
    target_client = Client()
    target_client.force_login(target)
    assert target_client.get("/api/me/tokens").status_code == 403
    admin_client.put(f"/api/users/{target.email}/role", {"role": "operator"}, format="json")
    assert target_client.get("/api/me/tokens").status_code == 200
    assert bearer(token).get("/api/me").status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.USER_ROLE_CHANGED)
    assert event.object_name == target.email and event.details == "viewer -> operator"


@pytest.mark.parametrize(
    "body",
    [{"role": "emperor"}, {"role": 1}, {"role": None}, {}, {"role": "x" * 100_000}],
)
def test_set_role_bad_input_is_400(admin_client, body):
    target = make_user("viewer")
    response = admin_client.put(f"/api/users/{target.email}/role", body, format="json")
    assert response.status_code == 400
    assert "role" in response.json()["fields"]
    target.refresh_from_db()
    assert target.role_id == "viewer"


def test_set_role_malformed_json_is_400(admin_client):
    target = make_user("viewer")
    response = admin_client.put(f"/api/users/{target.email}/role", "{", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]


def test_set_custom_role(admin_client):
    from accounts.models import Role

    Role.objects.create(name="log-readers", permissions=["audit.view"])
    target = make_user("viewer")
    response = admin_client.put(f"/api/users/{target.email}/role", {"role": "log-readers"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "log-readers"


def test_unknown_user_is_404_json(admin_client):
    response = admin_client.put("/api/users/ghost@example.com/role", {"role": "viewer"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"error": "No User matches the given query."}


def test_email_lookup_is_case_insensitive(admin_client):
    target = make_user("viewer", email="MiXeD@Example.com")
    response = admin_client.put("/api/users/MIXED@example.COM/role", {"role": "operator"}, format="json")
    assert response.status_code == 200 and response.json()["email"] == "mixed@example.com"


def test_last_admin_cannot_be_demoted(admin_client):
    response = admin_client.put(f"/api/users/{admin_client.user.email}/role", {"role": "viewer"}, format="json")
    assert response.status_code == 409
    admin_client.user.refresh_from_db()
    assert admin_client.user.role_id == "admin"


def test_admin_can_be_demoted_when_another_exists(admin_client):
    other = make_user("admin")
    response = admin_client.put(f"/api/users/{other.email}/role", {"role": "operator"}, format="json")
    assert response.status_code == 200


# --- disable / enable ------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [*ROLE_MATRIX, ("admin", 200)])
def test_disable_by_role(client_as, role, status):
    target = make_user("operator")
    assert client_as(role).post(f"/api/users/{target.email}/disable").status_code == status
    target.refresh_from_db()
    assert target.is_active is (status != 200)


def test_disable_blocks_login_keys_tokens_and_ends_web_sessions(admin_client):
    target = make_user("poweruser")
    web = browser_login(target)
    assert web.get("/api/me").status_code == 200
    _, key = make_api_key(target)
    _, token = make_user_token(target)
    response = admin_client.post(f"/api/users/{target.email}/disable")
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert web.get("/api/me").status_code == 401
    assert not LoginSession.objects.filter(user=target).exists()
    assert bearer(key).get("/api/me").status_code == 401
    assert bearer(token).get("/api/me").status_code == 401
    login = Client().post("/login", {"username": target.username, "password": PASSWORD})
    assert login.status_code == 200  # the form again, not a redirect
    assert "disabled" in login.content.decode()


@pytest.mark.parametrize("role, status", [*ROLE_MATRIX, ("admin", 200)])
def test_enable_by_role(client_as, role, status):
    target = make_user("operator", active=False)
    assert client_as(role).post(f"/api/users/{target.email}/enable").status_code == status
    target.refresh_from_db()
    assert target.is_active is (status == 200)


def test_enable_restores_access(admin_client):
    target = make_user("operator")
    _, token = make_user_token(target)
    User.objects.filter(pk=target.pk).update(is_active=False)
    assert bearer(token).get("/api/me").status_code == 401
    admin_client.post(f"/api/users/{target.email}/enable")
    assert bearer(token).get("/api/me").status_code == 200


def test_admin_cannot_disable_self(admin_client):
    make_user("admin")
    response = admin_client.post(f"/api/users/{admin_client.user.email}/disable")
    assert response.status_code == 400
    assert "own account" in response.json()["error"]


def test_custom_user_manager_cannot_demote_disable_or_delete_an_admin():
    """Only those who hold all of a user's permissions change their account: a user manager
    cannot lock admins out (this also keeps the last admin, whom only admins may touch)."""
    from accounts.models import Role

    Role.objects.create(name="useradmin", permissions=["users.manage"])
    last_admin = make_user("admin")
    manager = Client()
    manager.force_login(make_user("useradmin"))
    for call in (
        lambda: manager.post(f"/api/users/{last_admin.email}/disable"),
        lambda: manager.delete(f"/api/users/{last_admin.email}"),
        lambda: manager.put(f"/api/users/{last_admin.email}/role", {"role": "viewer"}, content_type="application/json"),
        lambda: manager.delete(f"/api/users/{last_admin.email}/sessions"),
    ):
        response = call()
        assert response.status_code == 403 and "you do not" in response.json()["error"]
    last_admin.refresh_from_db()
    assert last_admin.is_active and last_admin.role_id == "admin"


# --- delete ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [*ROLE_MATRIX, ("admin", 204)])
def test_delete_by_role(client_as, role, status):
    target = make_user("operator")
    assert client_as(role).delete(f"/api/users/{target.email}").status_code == status
    assert User.objects.filter(pk=target.pk).exists() is (status != 204)


def test_delete_removes_keys_and_keeps_audit(admin_client):
    target = make_user("poweruser")
    make_api_key(target)
    admin_client.delete(f"/api/users/{target.email}")
    assert not ApiKey.objects.filter(user_id=target.pk).exists()
    assert AuditEvent.objects.filter(action=AuditAction.API_KEY_CREATED, user_email=target.email).exists()
    assert AuditEvent.objects.filter(action=AuditAction.USER_DELETED, object_name=target.email).exists()


def test_admin_cannot_delete_self(admin_client):
    assert admin_client.delete(f"/api/users/{admin_client.user.email}").status_code == 400
    assert User.objects.filter(pk=admin_client.user.pk).exists()


# --- force logout ----------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [*ROLE_MATRIX, ("admin", 200)])
def test_force_logout_by_role(client_as, role, status):
    target = make_user("operator")
    web = browser_login(target)
    assert client_as(role).delete(f"/api/users/{target.email}/sessions").status_code == status
    assert (web.get("/api/me").status_code == 200) is (status != 200)


def test_force_logout_ends_every_browser(admin_client):
    target = make_user("operator")
    browsers = [browser_login(target) for _ in range(3)]
    response = admin_client.delete(f"/api/users/{target.email}/sessions")
    assert response.json() == {"email": target.email, "web_sessions_ended": 3}
    assert all(b.get("/api/me").status_code == 401 for b in browsers)
    assert browser_login(target).get("/api/me").status_code == 200  # not disabled, may sign in again
