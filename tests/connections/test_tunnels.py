"""Connection tunnels against real peers: OpenSSH targets and jump hosts, a loopback echo
service, the tunnel manager in this process (Celery eager) and in a real Celery worker."""

import json
import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from connections import tunnels
from connections.models import JumpHop, Tunnel
from connections.services.tunnels import reap_lost_tunnels
from nodes.models import Node
from targets.models import KnownHost
from targets.services.hostkeys import HostRoute
from tests.factories import make_connection
from tests.processes import ROOT
from tests.tunnels import (
    DEADLINE,
    celery_worker,
    echo_through,
    free_tunnel_port,
    new_queue,
    port_is_open,
    start,
    stop_tunnels,
    tunnel_state,
    wait_for,
    wait_for_state,
)

pytestmark = pytest.mark.django_db(transaction=True)

def ssh_connection(owner, sshd, remote_port, local_port, **fields):
    fields.setdefault("password", sshd.password)
    return make_connection(
        owner,
        host=sshd.host,
        port=sshd.port,
        username=sshd.user,
        tunnels=[{"local_port": local_port, "remote_host": "127.0.0.1", "remote_port": remote_port}],
        **fields,
    )


@pytest.fixture
def running_tunnel(client_as, sshd, echo_server, in_process):
    """A poweruser's SSH connection whose tunnel is up, in this process's manager."""
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port)
    assert start(client, connection).status_code == 202
    wait_for_state(client, connection, {"up"})
    return client, connection, local_port


def stop_and_see_the_port_close(client, connection, local_port):
    assert stop_tunnels(client, connection).status_code == 202
    wait_for_state(client, connection, {"stopped"})
    wait_for(lambda: not port_is_open(local_port), what="the port to close")


# --- a real Celery worker -------------------------------------------------------------------


def test_tunnel_through_a_celery_worker_echoes_and_closes_on_stop(client_as, sshd, echo_server, settings, tmp_path):
    queue = new_queue("tunnels")
    settings.TUNNEL_QUEUE = queue
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port)
    log = tmp_path / "worker.log"
    with celery_worker(queue, log):
        response = start(client, connection)
        assert response.status_code == 202, response.content
        assert response.json()["tunnels"][0]["state"] == "starting"
        up = wait_for_state(client, connection, {"up", "failed"}, timeout=60)
        assert up["state"] == "up", (up, log.read_text())
        assert up["worker"] and f"-{os.getpid()}-" not in up["worker"]  # held by the worker, not by this process
        assert up["bindAddress"] == "127.0.0.1"

        assert echo_through(local_port, b"ping") == b"ping"
        assert echo_through(local_port, b"x" * 200_000) == b"x" * 200_000
        counted = wait_for(
            lambda: (lambda t: t if t["connections"] == 2 and t["bytesOut"] == 200_004 else None)(
                tunnel_state(client, connection)
            ),
            what="the worker's counters",
        )
        assert counted["bytesIn"] == 200_004

        assert stop_tunnels(client, connection).status_code == 202
        stopped = wait_for_state(client, connection, {"stopped"})
        assert stopped["stoppedAt"]
        wait_for(lambda: not port_is_open(local_port), what="the port to close")
    assert "Traceback" not in log.read_text()


def test_a_stopping_worker_hands_its_tunnels_to_the_next_one(client_as, sshd, echo_server, settings, tmp_path):
    queue = new_queue("tunnels")
    settings.TUNNEL_QUEUE = queue
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port)
    with celery_worker(queue, tmp_path / "first.log"):
        assert start(client, connection).status_code == 202
        first = wait_for_state(client, connection, {"up"}, timeout=60)
    # The worker stopped (SIGTERM, a warm shutdown): the port closed, the tunnel waits for a worker.
    assert not port_is_open(local_port)
    waiting = tunnel_state(client, connection)
    assert waiting["state"] == "starting" and "worker stopped" in waiting["message"]
    with celery_worker(queue, tmp_path / "second.log"):
        Tunnel.objects.update(updated_at=timezone.now() - timedelta(minutes=1))
        reap_lost_tunnels()  # what the beat schedule runs: it queues the start again
        second = wait_for_state(client, connection, {"up"}, timeout=60)
        assert second["worker"] != first["worker"]
        assert echo_through(local_port) == b"hello through the tunnel"
        stop_tunnels(client, connection)
        wait_for_state(client, connection, {"stopped"})


# --- the manager in this process --------------------------------------------------------------


def test_tunnel_reaches_its_target_through_jump_hosts(client_as, sshd, jump_sshd, echo_server, in_process):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port)
    for position, address in enumerate(("127.0.0.2", "127.0.0.3")):
        JumpHop.objects.create(connection=connection, position=position, host=address, port=jump_sshd.port,
                               username=jump_sshd.user, password=jump_sshd.password)
    jump_log, target_log = jump_sshd.log_text(), sshd.log_text()
    assert start(client, connection).status_code == 202
    assert wait_for_state(client, connection, {"up", "failed", "down"})["state"] == "up"
    assert echo_through(local_port) == b"hello through the tunnel"
    hops = jump_sshd.log_text()[len(jump_log):]
    assert f"target 127.0.0.3 port {jump_sshd.port}" in hops  # hop one opened hop two
    assert f"target {sshd.host} port {sshd.port}" in hops  # hop two opened the target
    assert f"target 127.0.0.1 port {echo_server}" in sshd.log_text()[len(target_log):]  # the target forwarded
    stop_and_see_the_port_close(client, connection, local_port)


def test_parallel_connections_each_get_their_own_bytes_back(running_tunnel):
    client, connection, local_port = running_tunnel
    payloads = [bytes([65 + n]) * (50_000 + n) for n in range(16)]
    results = [None] * len(payloads)

    def run(n):
        results[n] = echo_through(local_port, payloads[n])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert results == payloads
    total = sum(map(len, payloads))
    counted = wait_for(lambda: (lambda t: t if t["bytesOut"] == total else None)(tunnel_state(client, connection)),
                       what="the counters")
    assert counted["connections"] == len(payloads) and counted["bytesIn"] == total


def test_a_dropped_ssh_link_is_restored(running_tunnel):
    client, connection, local_port = running_tunnel
    (tunnel,) = tunnels.running_manager().held().values()
    dropped = tunnel.link
    dropped.transports[0].sock.shutdown(socket.SHUT_RDWR)  # the TCP connection to the target breaks
    wait_for(lambda: tunnel.link is not None and tunnel.link is not dropped, what="a new SSH link")
    assert wait_for_state(client, connection, {"up"})["message"] == ""
    assert echo_through(local_port) == b"hello through the tunnel"


def test_tunnel_listens_on_loopback_only(running_tunnel):
    client, connection, local_port = running_tunnel
    (tunnel,) = tunnels.running_manager().held().values()
    assert tunnel.listener.getsockname() == ("127.0.0.1", local_port)
    with socket.socket() as other:  # another loopback address of this machine reaches nothing
        other.settimeout(2)
        assert other.connect_ex(("127.0.0.2", local_port)) != 0


def test_unreachable_target_is_retried_with_a_message_and_no_secret(client_as, closed_port, in_process):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    secret = "pw-never-shown-4711"
    connection = make_connection(
        client.user, host="127.0.0.1", port=closed_port, username="pamtest", password=secret,
        tunnels=[{"local_port": local_port, "remote_host": "localhost", "remote_port": 5433}],
    )
    assert start(client, connection).status_code == 202
    down = wait_for_state(client, connection, {"down"})
    assert f"Cannot reach 127.0.0.1:{closed_port}" in down["message"]
    assert "Next attempt in" in down["message"]
    assert port_is_open(local_port)  # the port stays claimed while the link is retried
    response = client.get(f"/api/connections/{connection.pk}/tunnels")
    assert secret not in response.content.decode()
    assert secret not in json.dumps(list(Tunnel.objects.values()), default=str)
    stop_and_see_the_port_close(client, connection, local_port)


def test_wrong_password_fails_for_good_and_frees_the_port(client_as, sshd, echo_server, in_process):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port, password="wrong-pw-1234")
    assert start(client, connection).status_code == 202
    failed = wait_for_state(client, connection, {"failed"})
    assert "Authentication" in failed["message"] and "wrong-pw-1234" not in failed["message"]
    wait_for(lambda: not port_is_open(local_port), what="the port to close")
    # A failed tunnel no longer holds its port: it may be started again.
    assert start(client, connection).status_code == 202


def test_a_worker_gone_silent_has_its_tunnels_reopened(running_tunnel):
    client, connection, local_port = running_tunnel
    tunnels.shutdown(release=False)  # the worker dies: its port closes, its rows stay as they were
    wait_for(lambda: not port_is_open(local_port), what="the port to close")
    assert Tunnel.objects.get().state == "up"
    assert reap_lost_tunnels() == 0  # it beat recently: not lost yet
    # Time passes: the dead worker's node beats no more, so its row ages past NODE_STALE_AFTER.
    Node.objects.filter(pk=Tunnel.objects.get().node).update(
        seen_at=timezone.now() - timedelta(seconds=django_settings.NODE_STALE_AFTER + 1)
    )
    assert reap_lost_tunnels() == 1  # reopened by the start task it queues (eager here)
    assert wait_for_state(client, connection, {"up"})["worker"] == tunnels.running_manager().node_id
    assert echo_through(local_port) == b"hello through the tunnel"


def test_the_tunnel_worker_is_a_node_of_the_registry_until_it_stops(running_tunnel, settings):
    client, connection, _ = running_tunnel
    node = Node.objects.get(pk=tunnels.running_manager().node_id)
    assert (node.kind, node.pid) == ("worker", os.getpid())
    assert Tunnel.objects.get().node == node.pk
    settings.NODE_HEARTBEAT = 0.2
    stalled = timezone.now() - timedelta(seconds=django_settings.NODE_STALE_AFTER - 5)
    Node.objects.filter(pk=node.pk).update(seen_at=stalled)
    wait_for(lambda: Node.objects.get(pk=node.pk).seen_at > stalled, what="the worker's heartbeat")
    tunnels.shutdown(release=True)  # a clean stop: the tunnel waits for the next worker, the node is gone
    assert not Node.objects.filter(pk=node.pk).exists()
    waiting = tunnel_state(client, connection)
    assert waiting["state"] == "starting" and "worker stopped" in waiting["message"]


def test_starting_twice_keeps_the_running_tunnel(client_as, sshd, echo_server, in_process):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port)
    assert start(client, connection).status_code == 202
    first = wait_for_state(client, connection, {"up"})
    assert start(client, connection).status_code == 202  # no "port taken" from its own tunnel
    assert tunnel_state(client, connection) == first


def test_changed_host_key_fails_the_tunnel_until_accepted(client_as, sshd, echo_server, in_process):
    route = HostRoute.direct(sshd.host, sshd.port, sshd.host)
    pin = KnownHost.objects.create(route=route.digest, host=sshd.host, address=sshd.host, port=sshd.port,
                                   key_type="ssh-ed25519", fingerprint="SHA256:old",
                                   public_key="AAAAC3NzaC1lZDI1NTE5AAAAIG9ubHktYS10ZXN0LWtleS1ub3QtdGhlLXJlYWwtb25l")
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, echo_server, local_port)
    assert start(client, connection).status_code == 202
    failed = wait_for_state(client, connection, {"failed", "up"})
    assert failed["state"] == "failed" and "host key" in failed["message"]
    wait_for(lambda: not port_is_open(local_port), what="the port to close")
    assert pin.sightings.get().seen_by == client.user  # whoever started the tunnel met the key


def test_admin_site_stops_tunnels(client_as, closed_port, in_process):
    client = client_as("poweruser")
    connection = make_connection(client.user, host="127.0.0.1", port=closed_port, username="u", password="pw",
                                 tunnels=[{"local_port": free_tunnel_port(), "remote_host": "db", "remote_port": 5432}])
    assert start(client, connection).status_code == 202
    wait_for_state(client, connection, {"down"})
    admin = client_as("admin")
    response = admin.post("/admin/connections/tunnel/", {"action": "stop", "_selected_action": [Tunnel.objects.get().pk]})
    assert response.status_code == 302
    wait_for_state(client, connection, {"stopped"})


# --- ports: range and taken -----------------------------------------------------------------


@pytest.mark.django_db
def test_local_port_outside_the_range_is_refused_at_save(client_as, settings):
    settings.TUNNEL_PORT_MIN, settings.TUNNEL_PORT_MAX = 41000, 41010
    client = client_as("poweruser")
    body = {"name": "db", "protocol": "ssh", "host": "10.0.0.1", "username": "root", "password": "pw",
            "tunnels": [{"localPort": 41000, "remoteHost": "db", "remotePort": 5432},
                        {"localPort": 5432, "remoteHost": "db", "remotePort": 5432}]}
    response = client.post("/api/connections", body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"tunnels[1].localPort": ["Local ports of tunnels must be between 41000 and 41010; 5432 is not."]}
    body["tunnels"].pop()
    connection_id = client.post("/api/connections", body, format="json").json()["id"]
    changed = {"tunnels": [{"localPort": 41011, "remoteHost": "db", "remotePort": 5432}]}
    response = client.put(f"/api/connections/{connection_id}", changed, format="json")
    assert response.status_code == 400 and "tunnels[0].localPort" in response.json()["fields"]


@pytest.mark.django_db
def test_range_narrowed_later_blocks_starting_not_editing(client_as, settings):
    client = client_as("poweruser")
    connection = make_connection(client.user, password="pw", tunnels=[
        {"local_port": settings.TUNNEL_PORT_MIN, "remote_host": "db", "remote_port": 5432}])
    settings.TUNNEL_PORT_MIN += 1
    assert client.put(f"/api/connections/{connection.pk}", {"name": "renamed"}, format="json").status_code == 200
    response = start(client, connection)
    assert response.status_code == 400 and "tunnels[0].localPort" in response.json()["fields"]
    assert not Tunnel.objects.exists()


@pytest.mark.django_db
def test_one_local_port_twice_in_a_connection_is_refused(client_as):
    client = client_as("poweruser")
    port = django_settings.TUNNEL_PORT_MIN
    body = {"name": "db", "protocol": "ssh", "host": "10.0.0.1", "username": "root", "password": "pw",
            "tunnels": [{"localPort": port, "remoteHost": "a", "remotePort": 1},
                        {"localPort": port, "remoteHost": "b", "remotePort": 2}]}
    response = client.post("/api/connections", body, format="json")
    assert response.status_code == 400 and "tunnels[1].localPort" in response.json()["fields"]


@pytest.mark.django_db
def test_denied_remote_host_is_refused_at_save(client_as):
    client = client_as("poweruser")
    body = {"name": "meta", "protocol": "ssh", "host": "10.0.0.1", "username": "root", "password": "pw",
            "tunnels": [{"localPort": django_settings.TUNNEL_PORT_MIN, "remoteHost": "169.254.169.254", "remotePort": 80}]}
    response = client.post("/api/connections", body, format="json")
    assert response.status_code == 400 and "tunnels[0].remoteHost" in response.json()["fields"]


def test_port_taken_by_another_program_is_a_400(client_as, sshd):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    connection = ssh_connection(client.user, sshd, 9, local_port)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", local_port))
        squatter.listen(1)
        response = start(client, connection)
    assert response.status_code == 400
    assert response.json() == {
        "error": f"tunnels[0].localPort: Port {local_port} on 127.0.0.1 is already in use.",
        "fields": {"tunnels[0].localPort": [f"Port {local_port} on 127.0.0.1 is already in use."]},
    }
    assert tunnel_state(client, connection)["state"] == "stopped"


def test_port_held_by_another_connections_tunnel_is_a_400(client_as, closed_port, in_process):
    client = client_as("poweruser")
    local_port = free_tunnel_port()
    spec = {"host": "127.0.0.1", "port": closed_port, "username": "u", "password": "pw",
            "tunnels": [{"local_port": local_port, "remote_host": "db", "remote_port": 5432}]}
    first = make_connection(client.user, "first", **spec)
    second = make_connection(client.user, "second", **spec)  # saving the same port twice is allowed
    assert start(client, first).status_code == 202
    wait_for_state(client, first, {"down"})
    response = start(client, second)
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "tunnels[0].localPort": [f"Port {local_port} is already taken by another connection's tunnel."]
    }
    stop_tunnels(client, first)
    wait_for_state(client, first, {"stopped"})
    assert start(client, second).status_code == 202  # free again once the first one stopped


def settings_probe(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PAM_") and k != "DJANGO_SETTINGS_MODULE"}
    clean.update({"DJANGO_SETTINGS_MODULE": "pam.settings", "PAM_DATA_DIR": str(tmp_path), **env})
    code = "import django; django.setup(); from django.conf import settings as s; print(s.TUNNEL_PORT_MIN, s.TUNNEL_PORT_MAX)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.django_db
def test_port_range_comes_from_the_environment(tmp_path):
    assert settings_probe(tmp_path).stdout.split() == ["40000", "40999"]
    assert settings_probe(tmp_path, PAM_TUNNEL_PORT_MIN="45000", PAM_TUNNEL_PORT_MAX="45099").stdout.split() == [
        "45000", "45099"]
    inverted = settings_probe(tmp_path, PAM_TUNNEL_PORT_MIN="45000", PAM_TUNNEL_PORT_MAX="44000")
    assert inverted.returncode != 0 and "PAM_TUNNEL_PORT_MIN" in inverted.stderr
