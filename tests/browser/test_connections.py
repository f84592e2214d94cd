"""The connections page in Chromium: tree, forms, sharing, health (import and export:
test_connection_import_export.py)."""

import re
import socket

import pytest
from playwright.sync_api import expect

from connections.models import Connection, ConnectionGroup, Share
from tests.browser.connections_page import (
    detail_button,
    expect_names,
    open_connections,
    select,
    shown_names,
    tree_folder,
    tree_item,
)
from tests.factories import make_address_book_folder, make_connection, make_folder, make_user

pytestmark = pytest.mark.browser

ROLES = ["viewer", "operator", "poweruser", "admin"]


@pytest.mark.parametrize("role", ROLES)
def test_page_opens_without_console_errors_for_every_role(page, role):
    owner = make_user("poweruser")
    make_connection(owner, "team-wiki", shared=True, protocol="web", host="", url="https://wiki.example.com/")
    folder = make_address_book_folder("Datacenter", groups=["ops"])
    make_connection(None, "core-switch", group=folder, protocol="telnet")
    user = make_user(role, groups=["ops"])
    can_create = role in ("poweruser", "admin")
    if can_create:
        make_connection(user, "my-box", tags=["mine"])
    open_connections(page, user)

    expect(page.locator("nav a[aria-current=page]")).to_have_text("Connections")
    expect(page.locator("#shared-section")).to_contain_text("team-wiki")
    expect(tree_folder(page, "Datacenter").locator(".ab-marker")).to_have_text("address book")
    expect(tree_item(page, "core-switch")).to_be_visible()
    for control in ["#new-connection", "#new-folder", "#open-import", "#export-link"]:
        expect(page.locator(control)).to_have_count(1 if can_create else 0)

    select(page, "team-wiki")
    expect(page.locator("#conn-detail")).to_contain_text("https://wiki.example.com/")
    expect(detail_button(page, "Check")).to_be_visible()
    expect(detail_button(page, "Share")).to_have_count(0)  # not the user's own connection
    expect(detail_button(page, "Edit")).to_have_count(1 if role == "admin" else 0)  # admins edit any

    tree_folder(page, "Datacenter").locator(".folder-row .tree-label").click()
    expect(page.locator("#folder-title")).to_have_text("Datacenter")
    for action in ["Rename or move", "New subfolder", "Delete folder"]:
        expect(page.locator("#folder-detail").get_by_role("button", name=action)).to_have_count(0)

    if can_create:
        select(page, "my-box")
        for action in ["Edit", "Delete", "Share", "Check"]:
            expect(detail_button(page, action)).to_be_visible()
    page.wait_for_load_state("networkidle")


def test_poweruser_creates_folder_and_ssh_connection_and_keeps_password_only_where_it_was(page):
    user = make_user("poweruser")
    open_connections(page, user)

    page.click("#new-folder")
    page.fill("#ff-name", "Production")
    page.click("#folder-form-save")
    expect(tree_folder(page, "Production")).to_be_visible()
    expect(page.locator("#folder-title")).to_have_text("Production")
    folder = ConnectionGroup.objects.get(owner=user, name="Production")

    page.click("#new-connection")  # the selected folder is preselected
    expect(page.locator("#cf-group")).to_have_value(folder.pk)
    expect(page.locator("#cf-port")).to_have_attribute("placeholder", "22")
    expect(page.locator("#cf-private-key")).to_be_visible()
    expect(page.locator("#cf-url")).to_be_hidden()
    page.fill("#cf-name", "web-1")
    page.fill("#cf-host", "10.0.0.5")
    page.fill("#cf-port", "2222")
    page.fill("#cf-username", "root")
    page.fill("#cf-password", "s3cret")
    page.fill("#cf-tags", "prod, web , ")
    page.click("#conn-form-save")

    expect(page.locator("#detail-title")).to_have_text("web-1")
    expect(tree_folder(page, "Production").locator('li.tree-conn[data-name="web-1"]')).to_be_visible()
    expect(page.locator("#conn-detail")).to_contain_text("password stored")
    connection = Connection.objects.get(owner=user, name="web-1")
    assert (connection.group_id, connection.host, connection.port) == (folder.pk, "10.0.0.5", 2222)
    assert connection.password == "s3cret"
    assert sorted(t.name for t in connection.tag_set.all()) == ["prod", "web"]

    detail_button(page, "Edit").click()
    expect(page.locator("#cf-password")).to_have_value("")
    expect(page.locator("#cf-password-hint")).to_have_text("stored — leave blank to keep")
    page.fill("#cf-display-name", "Web one")
    page.click("#conn-form-save")
    expect(page.locator("#detail-title")).to_have_text("Web one")
    expect(page.locator("#conn-detail")).to_contain_text("password stored")
    connection.refresh_from_db()
    assert (connection.display_name, connection.password) == ("Web one", "s3cret")

    # Another account would get the stored password: a poweruser may not read it, so it goes.
    detail_button(page, "Edit").click()
    page.fill("#cf-username", "admin")
    expect(page.locator("#cf-password-hint")).to_contain_text("target changed — enter it again or it is dropped")
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).to_contain_text("none stored")
    connection.refresh_from_db()
    assert (connection.username, connection.password) == ("admin", "")

    detail_button(page, "Edit").click()
    page.fill("#cf-password", "n3w")
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).to_contain_text("password stored")
    connection.refresh_from_db()
    assert connection.password == "n3w"

    detail_button(page, "Edit").click()
    page.check("#cf-password-clear")
    expect(page.locator("#cf-password")).to_be_disabled()
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).to_contain_text("none stored")
    connection.refresh_from_db()
    assert connection.password == ""
    assert connection.username == "admin"


def test_rdp_connection_keeps_its_settings_in_extra_config(page):
    user = make_user("poweruser")
    open_connections(page, user)
    page.click("#new-connection")
    page.select_option("#cf-protocol", "rdp")
    expect(page.locator("#cf-port")).to_have_attribute("placeholder", "3389")
    expect(page.locator("#cf-private-key")).to_be_hidden()
    expect(page.locator("#cf-add-tunnel")).to_be_hidden()
    page.fill("#cf-name", "win-1")
    page.fill("#cf-host", "10.0.0.9")
    page.fill("#cf-username", "Administrator")
    page.fill("#cf-domain", "CORP")
    page.select_option("#cf-security", "nla")
    page.fill("#cf-resolution", "1920x1080")
    page.select_option("#cf-color-depth", "24")
    page.check("#cf-skip-cert")
    page.click("#conn-form-save")

    expect(page.locator("#detail-title")).to_have_text("win-1")
    expect(page.locator("#conn-detail")).to_contain_text("CORP")
    connection = Connection.objects.get(owner=user, name="win-1")
    assert connection.extra_config == {
        "domain": "CORP",
        "security": "nla",
        "resolution": "1920x1080",
        "color_depth": 24,
    }
    assert connection.skip_cert_validation is True
    assert connection.port is None  # blank: the protocol's default

    detail_button(page, "Edit").click()
    expect(page.locator("#cf-domain")).to_have_value("CORP")
    page.fill("#cf-resolution", "1280x720")
    page.select_option("#cf-security", "")
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).to_contain_text("1280x720")
    connection.refresh_from_db()
    assert connection.extra_config == {"domain": "CORP", "resolution": "1280x720", "color_depth": 24}


def test_search_and_tag_filter_the_tree(page):
    user = make_user("poweruser")
    folder = make_folder(user, "Databases")
    make_connection(user, "alpha-web", host="10.1.1.1", tags=["prod"])
    make_connection(user, "beta-db", host="db.internal", tags=["staging"], group=folder)
    make_connection(user, "gamma", host="10.9.9.9", tags=["prod", "linux"])
    open_connections(page, user)
    expect(page.locator("#conn-tree li.tree-conn")).to_have_count(3)

    search = page.locator("#conn-search")
    steps = [
        ("ALPHA", ["alpha-web"]),  # name, any case
        ("db.internal", ["beta-db"]),  # host
        ("linux", ["gamma"]),  # tag
        ("10.", ["alpha-web", "gamma"]),
    ]
    for term, expected in steps:
        search.fill(term)
        expect_names(page, expected)
    search.fill("alpha")
    expect(tree_folder(page, "Databases")).to_have_count(0)  # folders without a match hide
    search.fill("beta")
    expect(tree_folder(page, "Databases").locator('li[data-name="beta-db"]')).to_be_visible()
    search.fill("nothing-like-this")
    expect(page.locator("#my-section")).to_contain_text("Nothing matches.")

    search.fill("")
    page.select_option("#conn-tag", "prod")
    expect_names(page, ["alpha-web", "gamma"])
    page.select_option("#conn-protocol", "ssh")
    page.locator("#conn-search").fill("gam")
    expect_names(page, ["gamma"])
    page.locator("#conn-search").fill("")
    page.select_option("#conn-tag", "")
    expect_names(page, ["alpha-web", "beta-db", "gamma"])
    page.select_option("#conn-protocol", "rdp")
    expect(page.locator("#my-section")).to_contain_text("Nothing matches.")


def test_share_dialog_shares_with_a_user_and_a_role(page):
    owner = make_user("poweruser", display_name="Olga Owner")
    friend = make_user("viewer", display_name="Fritz Friend")
    operator = make_user("operator")
    make_user("viewer", display_name="Someone Else")
    connection = make_connection(owner, "jump-box", host="10.2.2.2", password="pw")
    open_connections(page, owner)
    select(page, "jump-box")
    detail_button(page, "Share").click()
    dialog = page.locator("#share-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#share-none")).to_be_visible()
    page.fill("#share-search", "fritz")
    result = page.locator(f'#share-results li[data-target-id="user_{friend.pk}"]')
    expect(page.locator("#share-results li")).to_have_count(1)
    result.get_by_role("button", name="Add").click()
    page.select_option("#share-role", "role_operator")
    page.click("#share-add-role")
    expect(page.locator("#share-list li")).to_have_count(2)
    page.click("#share-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#conn-detail")).to_contain_text(friend.email)
    expect(page.locator("#conn-detail")).to_contain_text("role: operator")
    shares = Share.objects.filter(connection=connection)
    assert sorted(s.target_id for s in shares) == ["role_operator", f"user_{friend.pk}"]
    assert Connection.objects.usable_by(operator).filter(pk=connection.pk).exists()

    # Removing in the dialog and saving replaces the whole list.
    detail_button(page, "Share").click()
    role_share = page.locator('#share-list li[data-target-id="role_operator"]')
    role_share.get_by_role("button", name="Remove").click()
    page.click("#share-save")
    expect(page.locator("#conn-detail")).not_to_contain_text("role: operator")
    assert [s.target_id for s in Share.objects.filter(connection=connection)] == [f"user_{friend.pk}"]

    page.click("[data-testid=logout]")
    open_connections(page, friend)
    expect(page.locator("#shared-section li.tree-conn")).to_have_count(1)
    select(page, "jump-box")
    expect(page.locator("#conn-detail")).to_contain_text("10.2.2.2")
    expect(page.locator("#conn-detail")).to_contain_text("password stored")
    for action in ["Edit", "Delete", "Share"]:
        expect(detail_button(page, action)).to_have_count(0)


def test_check_now_colours_health_dots(page):
    user = make_user("operator")
    owner = make_user("poweruser")
    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
        closed.close()  # nothing listens here any more
        make_connection(owner, "up", port=listener.getsockname()[1], shared=True)
        make_connection(owner, "down", port=closed_port, shared=True)
        open_connections(page, user)
        up_dot = tree_item(page, "up").locator(".health-dot")
        down_dot = tree_item(page, "down").locator(".health-dot")
        expect(up_dot).to_have_attribute("data-health", "unknown")
        expect(up_dot).to_have_attribute("title", "Not checked yet")

        page.click("#check-now")
        expect(page.locator("#check-status")).to_have_text("1 of 2 reachable.")
        expect(up_dot).to_have_attribute("data-health", "reachable")
        expect(up_dot).to_have_attribute("title", re.compile(r"^Reachable in \d+ ms, checked "))
        expect(down_dot).to_have_attribute("data-health", "unreachable")
        expect(down_dot).to_have_attribute("title", re.compile(r"^Unreachable: .+, checked "))
    assert Connection.objects.get(name="up").health_status == "reachable"

    # The stored outcome shows on the next visit, before any check.
    page.reload()
    expect(tree_item(page, "down").locator(".health-dot")).to_have_attribute("data-health", "unreachable")


def test_check_now_sends_at_most_500_checks_per_request(page):
    user = make_user("poweruser")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    Connection.objects.bulk_create(
        Connection(owner=user, name=f"many-{n:03}", protocol="ssh", host="127.0.0.1", port=port) for n in range(620)
    )
    batches = []
    page.on(
        "request",
        lambda r: r.url.endswith("/api/connections/health-check") and batches.append(len(r.post_data_json["checks"])),
    )
    open_connections(page, user)
    page.click("#check-now")
    expect(page.locator("#check-status")).to_have_text("0 of 620 reachable.", timeout=30_000)
    assert batches == [500, 120]
    expect(page.locator('#conn-tree .health-dot[data-health="unreachable"]')).to_have_count(620)


def test_names_from_the_api_render_as_text(page):
    user = make_user("poweruser")
    evil = "<img src=x onerror=alert(1)>"
    folder = make_folder(user, "<script>alert(2)</script>")
    make_connection(user, evil, tags=["<b>bold</b>"], group=folder, username="<i>me</i>")
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    open_connections(page, user)
    expect(tree_item(page, evil).locator(".tree-label")).to_have_text(evil)
    expect(tree_folder(page, "<script>alert(2)</script>").locator(".folder-row .tree-label")).to_have_text(
        "<script>alert(2)</script>"
    )
    select(page, evil)
    expect(page.locator("#conn-detail")).to_contain_text("<b>bold</b>")
    expect(page.locator("#conn-detail")).to_contain_text("<i>me</i>")
    injected = "#conn-tree img, #conn-tree script, #conn-pane img, #conn-pane script, #conn-detail :is(b, i)"
    assert page.locator(injected).count() == 0
    page.locator("#conn-search").fill("<b>")
    expect(tree_item(page, evil)).to_be_visible()
    assert alerts == []


def test_api_validation_errors_show_next_to_the_fields(page):
    user = make_user("poweruser")
    open_connections(page, user)
    page.click("#new-connection")
    page.fill("#cf-name", "broken")
    page.fill("#cf-host", "bad host")
    page.click("#cf-add-hop")
    page.locator("#cf-hops [data-key=host]").fill("10.5.5.5")
    page.click("#conn-form-save")
    expect(page.locator("#conn-form-error")).to_contain_text("host: Enter a host name")
    expect(page.locator('.field-error[data-for="host"]')).to_contain_text("Enter a host name")
    hop_error = page.locator('.field-error[data-for="jumpHosts[0]"]')
    expect(hop_error).to_have_text("username: This field may not be blank.")
    page.problems.clear()  # the browser logs the 400 response itself

    page.fill("#cf-host", "10.5.5.6")
    page.locator("#cf-hops [data-key=username]").fill("hopper")
    page.click("#conn-form-save")
    expect(page.locator("#detail-title")).to_have_text("broken")
    hops = Connection.objects.get(owner=user, name="broken").jump_hops.all()
    assert [(h.host, h.port, h.username) for h in hops] == [("10.5.5.5", 22, "hopper")]


def test_jump_host_secrets_follow_their_position(page):
    user = make_user("poweruser")
    open_connections(page, user)
    page.click("#new-connection")
    page.fill("#cf-name", "behind-hops")
    page.fill("#cf-host", "10.6.6.6")
    for host, password in [("10.6.0.1", "first-pw"), ("10.6.0.2", "second-pw")]:
        page.click("#cf-add-hop")
        row = page.locator("#cf-hops .hop-row").last
        row.locator("[data-key=host]").fill(host)
        row.locator("[data-key=username]").fill("hopper")
        row.locator("[data-key=password]").fill(password)
    page.click("#cf-add-tunnel")
    tunnel = page.locator("#cf-tunnels .tunnel-row")
    tunnel.locator("[data-key=localPort]").fill("40432")
    tunnel.locator("[data-key=remoteHost]").fill("localhost")
    tunnel.locator("[data-key=remotePort]").fill("5433")
    page.click("#conn-form-save")
    expect(page.locator('#tunnels tr[data-local-port="40432"]')).to_contain_text("127.0.0.1:40432")
    expect(page.locator('#tunnels tr[data-local-port="40432"]')).to_contain_text("localhost:5433")
    connection = Connection.objects.get(name="behind-hops")
    stored = [(h.host, h.password) for h in connection.jump_hops.all()]
    assert stored == [("10.6.0.1", "first-pw"), ("10.6.0.2", "second-pw")]
    assert connection.tunnels == [{"local_port": 40432, "remote_host": "localhost", "remote_port": 5433}]

    # Left blank in place: kept. A hop whose port changes is a new target, and the hops after
    # it are reached through it: their secrets go too, unless typed again.
    detail_button(page, "Edit").click()
    rows = page.locator("#cf-hops .hop-row")
    first_hint, second_hint = (rows.nth(i).locator('[data-hint="password"]') for i in (0, 1))
    expect(first_hint).to_have_text("stored — leave blank to keep")
    expect(second_hint).to_have_text("stored — leave blank to keep")
    rows.first.locator("[data-key=port]").fill("2201")
    expect(first_hint).to_contain_text("the way to this hop changed")
    expect(second_hint).to_contain_text("the way to this hop changed")
    rows.first.locator("[data-key=password]").fill("first-pw2")
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).to_contain_text("hopper@10.6.0.1:2201")
    stored = [(h.port, h.password) for h in connection.jump_hops.all()]
    assert stored == [(2201, "first-pw2"), (22, "")]

    detail_button(page, "Edit").click()
    page.locator("#cf-hops .hop-row").last.locator("[data-key=password]").fill("second-pw2")
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).to_contain_text("hopper@10.6.0.2:22 (password stored)")
    assert [h.password for h in connection.jump_hops.all()] == ["first-pw2", "second-pw2"]

    # Removing the first hop moves the second to index 0, where the API would keep the
    # *first* hop's password if the page omitted it; the page sends "" and says so.
    detail_button(page, "Edit").click()
    page.locator("#cf-hops .hop-row").first.get_by_role("button", name="Remove jump host").click()
    expect(page.locator("#cf-hops .hop-row")).to_have_count(1)
    expect(page.locator('#cf-hops [data-hint="password"]')).to_contain_text("the way to this hop changed")
    page.click("#conn-form-save")
    expect(page.locator("#conn-detail")).not_to_contain_text("10.6.0.1")
    assert [(h.host, h.password) for h in connection.jump_hops.all()] == [("10.6.0.2", "")]


def test_folders_rename_move_reorder_and_delete(page):
    user = make_user("poweruser")
    parent = make_folder(user, "Parent")
    child = make_folder(user, "Child", parent=parent)
    make_folder(user, "Zulu")
    make_connection(user, "inside", group=child)
    make_connection(user, "first")
    make_connection(user, "second")
    open_connections(page, user)
    assert shown_names(page) == ["inside", "first", "second"]

    select(page, "second")
    held = []  # the moved connection's detail, answered only after the next click
    detail = re.compile(rf"/api/connections/{re.escape(Connection.objects.get(name='second').pk)}$")
    page.route(detail,
               lambda route: held.append(route) if route.request.method == "GET" else route.continue_())
    detail_button(page, "Move up").click()
    expect(page.locator("#my-section > ul > li.tree-conn").first).to_have_attribute("data-name", "second")
    assert Connection.objects.get(name="second").sort_order < Connection.objects.get(name="first").sort_order

    # A folder chosen while that detail still loads stays shown when the detail arrives.
    tree_folder(page, "Zulu").locator(".folder-row .tree-label").click()
    expect(page.locator("#folder-title")).to_have_text("Zulu")
    page.wait_for_timeout(100)
    assert len(held) == 1
    held[0].continue_()
    page.unroute(detail)
    page.wait_for_load_state("networkidle")
    expect(page.locator("#folder-title")).to_have_text("Zulu")
    expect(page.locator("#folder-detail")).to_be_visible()
    page.locator("#folder-detail").get_by_role("button", name="Move up").click()
    expect(page.locator("#my-section > ul > li.tree-folder").first).to_have_attribute("data-name", "Zulu")

    tree_folder(page, "Parent").locator(".tree-label").first.click()
    page.locator("#folder-detail").get_by_role("button", name="Rename or move").click()
    page.select_option("#ff-parent", child.pk)
    page.click("#folder-form-save")
    expect(page.locator("#folder-form-error")).to_contain_text("cannot move under itself")
    expect(page.locator('#folder-form .field-error[data-for="parentId"]')).to_be_visible()
    page.problems.clear()  # the browser logs the 400 response itself

    page.select_option("#ff-parent", "")
    page.fill("#ff-name", "Renamed")
    page.click("#folder-form-save")
    expect(page.locator("#folder-title")).to_have_text("Renamed")
    expect(tree_folder(page, "Renamed")).to_be_visible()

    tree_folder(page, "Renamed").locator(".twisty").first.click()
    expect(tree_item(page, "inside")).to_have_count(0)
    tree_folder(page, "Renamed").locator(".twisty").first.click()
    expect(tree_item(page, "inside")).to_be_visible()

    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.locator("#folder-detail").get_by_role("button", name="Delete folder").click()
    expect(tree_folder(page, "Renamed")).to_have_count(0)
    assert "1 connection(s) and 1 subfolder(s)" in messages[0]
    assert not ConnectionGroup.objects.filter(pk__in=[parent.pk, child.pk]).exists()
    assert not Connection.objects.filter(name="inside").exists()
    expect(page.locator("#pane-empty")).to_be_visible()
