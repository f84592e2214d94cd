"""Tunnels from the connections page: Chromium, daphne and a Celery worker, all real processes."""

import pytest
from playwright.sync_api import expect

from tests.browser.connections_page import open_connections, select
from tests.factories import make_connection, make_user
from tests.processes import daphne, pam_env
from tests.tunnels import celery_worker, echo_through, free_tunnel_port, new_queue, port_is_open

pytestmark = pytest.mark.browser


@pytest.fixture
def queue():
    return new_queue("tunnels")


@pytest.fixture
def server(transactional_db, queue):
    """daphne sending tunnel tasks to this test's own queue."""
    with daphne(env=pam_env(PAM_TUNNEL_QUEUE=queue)) as base:
        yield base


def test_operator_starts_and_stops_a_shared_connections_tunnel(page, queue, sshd, echo_server, tmp_path):
    owner = make_user("poweruser")
    local_port = free_tunnel_port()
    make_connection(owner, "db-tunnel", shared=True, host=sshd.host, port=sshd.port, username=sshd.user,
                    password=sshd.password,
                    tunnels=[{"local_port": local_port, "remote_host": "127.0.0.1", "remote_port": echo_server}])
    row = page.locator(f'#tunnels tr[data-local-port="{local_port}"]')
    with celery_worker(queue, tmp_path / "worker.log", env=pam_env(PAM_TUNNEL_QUEUE=queue)):
        open_connections(page, make_user("operator"))
        select(page, "db-tunnel")
        expect(row.locator(".tunnel-state")).to_have_text("stopped")
        expect(row).to_contain_text(f"127.0.0.1:{local_port}")
        expect(page.locator("#tunnels-stop")).to_be_disabled()

        page.click("#tunnels-start")
        expect(row.locator(".tunnel-state")).to_have_text("up", timeout=60_000)
        assert echo_through(local_port) == b"hello through the tunnel"
        expect(row).to_contain_text("1 connection(s)", timeout=15_000)

        page.click("#tunnels-stop")
        expect(row.locator(".tunnel-state")).to_have_text("stopped", timeout=15_000)
        expect(page.locator("#tunnels-start")).to_be_enabled()
        assert not port_is_open(local_port)


def test_viewer_sees_tunnel_states_without_buttons(page, queue):
    owner = make_user("poweruser")
    make_connection(owner, "db-tunnel", shared=True, password="pw",
                    tunnels=[{"local_port": free_tunnel_port(), "remote_host": "db", "remote_port": 5432}])
    open_connections(page, make_user("viewer"))
    select(page, "db-tunnel")
    expect(page.locator("#tunnels .tunnel-state")).to_have_text("stopped")
    expect(page.locator("#tunnels button")).to_have_count(0)
