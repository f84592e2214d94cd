"""Routes: one typed value per target, built from a saved connection in one place, never
showing a secret when printed."""

import dataclasses

import pytest

from connections.models import JumpHop
from connections.services.routes import route_for_connection
from targets.routes import Hop, Route
from tests.factories import make_connection, make_user

SECRETS = ("target-pw", "-----BEGIN OPENSSH PRIVATE KEY-----target", "jump-pw", "-----BEGIN OPENSSH PRIVATE KEY-----jump")


def secret_route():
    return Route(
        target=Hop(host="db.internal", port=2222, username="root", password=SECRETS[0], private_key=SECRETS[1]),
        jumps=[Hop(host="bastion", username="ops", password=SECRETS[2], private_key=SECRETS[3])],
    )


@pytest.mark.parametrize("show", [repr, str, lambda route: f"{route}", lambda route: repr([route, route.jumps])])
def test_printing_a_route_never_shows_a_secret(show):
    shown = show(secret_route())
    assert not [secret for secret in SECRETS if secret in shown], shown


def test_repr_says_where_and_whether_a_secret_is_set():
    assert repr(Hop(host="h", username="u", password="pw")) == (
        "Hop(host='h', port=22, username='u', password='********', private_key='')"
    )
    assert str(secret_route()) == "ops@bastion:22 > root@db.internal:2222"


def test_a_route_is_frozen_and_its_hops_ordered_jumps_first():
    route = secret_route()
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.target = Hop(host="elsewhere")
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.target.password = "changed"
    assert isinstance(route.jumps, tuple)
    assert [hop.host for hop in route.hops] == ["bastion", "db.internal"]


def test_a_stored_hop_without_port_or_secrets_gets_the_defaults():
    assert Hop.from_mapping({"host": "10.0.9.2", "username": "j", "port": None}) == Hop(host="10.0.9.2", username="j")


@pytest.mark.django_db
def test_route_for_connection_signs_in_with_the_stored_credentials_through_the_jump_hosts(ssh_key):
    connection = make_connection(
        make_user("poweruser"), host="10.0.0.7", port=2200, username="deploy", password="stored-pw", private_key=ssh_key
    )
    JumpHop.objects.create(connection=connection, position=1, host="10.0.9.2", username="second", private_key=ssh_key)
    JumpHop.objects.create(connection=connection, position=0, host="10.0.9.1", port=2222, username="first",
                           password="hop-pw")
    route = route_for_connection(connection)
    assert route.target == Hop(host="10.0.0.7", port=2200, username="deploy", password="stored-pw", private_key=ssh_key)
    assert route.jumps == (
        Hop(host="10.0.9.1", port=2222, username="first", password="hop-pw"),
        Hop(host="10.0.9.2", port=22, username="second", private_key=ssh_key),
    )


@pytest.mark.django_db
def test_route_for_connection_leaves_out_a_key_its_protocol_cannot_use(ssh_key):
    connection = make_connection(make_user("poweruser"), protocol="telnet", port=23, username="u", password="pw",
                                 private_key=ssh_key)
    assert route_for_connection(connection).target == Hop(host="127.0.0.1", port=23, username="u", password="pw")
