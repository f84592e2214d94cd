"""Who may see, start and stop a connection's tunnels, role by role and object by object."""

import pytest

from accounts.choices import AuditAction
from accounts.models import AuditEvent
from accounts.services.users import disable_user
from connections.models import Connection, Tunnel
from tests.factories import make_connection, make_user
from tests.tunnels import free_tunnel_port, port_is_open, start, stop_tunnels, wait_for, wait_for_state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared_connection(closed_port):
    """A poweruser's connection shared with everyone; its target does not answer (no SSH needed)."""
    owner = make_user("poweruser")
    return make_connection(owner, "shared-db", shared=True, host="127.0.0.1", port=closed_port, username="u",
                           password="pw", tunnels=[{"local_port": free_tunnel_port(), "remote_host": "db", "remote_port": 5432}])


@pytest.mark.parametrize("role, status", [("viewer", 200), ("operator", 200), ("poweruser", 200), ("admin", 200)])
def test_who_sees_tunnel_states(client_as, shared_connection, role, status):
    assert client_as(role).get(f"/api/connections/{shared_connection.pk}/tunnels").status_code == status


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 202), ("poweruser", 202), ("admin", 202)])
def test_who_starts_tunnels(client_as, shared_connection, in_process, role, status):
    response = start(client_as(role), shared_connection)
    assert response.status_code == status, response.content
    assert Tunnel.objects.filter(state__in=["starting", "up", "down"]).exists() == (status == 202)


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 202), ("poweruser", 202), ("admin", 202)])
def test_who_stops_tunnels(client_as, shared_connection, in_process, role, status):
    start(client_as("operator"), shared_connection)
    response = stop_tunnels(client_as(role), shared_connection)
    assert response.status_code == status, response.content
    active = Tunnel.objects.filter(state__in=["starting", "up", "down"]).exists()
    assert active == (status != 202)


def test_anonymous_callers_are_refused(api_client, shared_connection):
    for path in ("tunnels", "tunnels/start", "tunnels/stop"):
        call = api_client.get if path == "tunnels" else api_client.post
        assert call(f"/api/connections/{shared_connection.pk}/{path}").status_code == 401


def test_private_connection_of_someone_else_is_hidden_or_stop_only(client_as, closed_port, in_process):
    owner = make_user("poweruser")
    connection = make_connection(owner, "private", host="127.0.0.1", port=closed_port, username="u", password="pw",
                                 tunnels=[{"local_port": free_tunnel_port(), "remote_host": "db", "remote_port": 5432}])
    assert start(client_as("operator"), connection).status_code == 404
    admin = client_as("admin")
    assert start(admin, connection).status_code == 403  # admins see it, but only its users open it
    owner_client = client_as("poweruser")
    owner_client.force_login(owner)
    assert start(owner_client, connection).status_code == 202
    assert stop_tunnels(admin, connection).status_code == 202  # sessions.terminate_any ends anyone's access
    assert not Tunnel.objects.filter(state__in=["starting", "up", "down"]).exists()
    assert AuditEvent.objects.filter(action=AuditAction.TUNNEL_CHANGED).count() == 2


def test_tunnels_need_stored_credentials(client_as, in_process):
    client = client_as("poweruser")
    connection = make_connection(client.user, password="pw", prompt_credentials=True, tunnels=[
        {"local_port": free_tunnel_port(), "remote_host": "db", "remote_port": 5432}])
    response = start(client, connection)
    assert response.status_code == 400 and "password" in response.json()["fields"]


def test_disabling_the_starter_stops_their_tunnels(client_as, shared_connection, in_process):
    operator = client_as("operator")
    assert start(operator, shared_connection).status_code == 202
    disable_user(user=operator.user, actor=make_user("admin"))
    wait_for(lambda: Tunnel.objects.get().state == "stopped", what="the tunnel to stop")


def test_deleting_the_connection_closes_its_tunnel(client_as, closed_port, in_process):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = make_connection(client.user, host="127.0.0.1", port=closed_port, username="u", password="pw",
                                 tunnels=[{"local_port": local_port, "remote_host": "db", "remote_port": 5432}])
    assert start(client, connection).status_code == 202
    wait_for_state(client, connection, {"down"})
    assert client.delete(f"/api/connections/{connection.pk}").status_code == 200
    wait_for(lambda: not port_is_open(local_port), what="the port to close")
    assert not Connection.objects.filter(pk=connection.pk).exists()
