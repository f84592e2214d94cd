"""The connections page in Chromium: import with progress and per-item errors, export without
credentials."""

import json
import re

import pytest
from playwright.sync_api import expect

from connections.models import Connection, ConnectionGroup, JumpHop
from tests.browser.connections_page import open_connections, tree_folder
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.browser


def _export_document(groups, connections):
    return {
        "version": 1,
        "exportedAt": "2024-01-01T00:00:00+00:00",
        "groups": groups,
        "connections": connections,
    }


def test_import_shows_progress_and_counts_then_errors_name_the_item(page, tmp_path):
    user = make_user("poweruser")
    groups = [
        {"id": "grp_old1", "name": "Imported", "parentId": None, "sortOrder": 0},
        {"id": "grp_old2", "name": "Nested", "parentId": "grp_old1", "sortOrder": 0},
    ]
    connections = [
        {
            "name": f"host-{n:03}",
            "protocol": "ssh",
            "host": f"10.3.{n // 250}.{n % 250 + 1}",
            "port": 22,
            "username": "deploy",
            "groupId": ["grp_old1", "grp_old2", None][n % 3],
            "tags": ["imported"],
        }
        for n in range(300)
    ]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_export_document(groups, connections)))
    connections[3]["port"] = 70000
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_export_document([], connections)))
    open_connections(page, user)

    page.click("#open-import")
    page.set_input_files("#import-file", str(good))
    page.click("#import-start")
    expect(page.locator("#import-result")).to_have_text("Imported 2 folder(s) and 300 connection(s).")
    expect(page.locator('#import-steps [data-step="upload"]')).to_have_attribute("data-state", "done")
    expect(page.locator("#import-progress")).to_have_attribute("value", "100")
    expect(page.locator('#import-steps [data-step="process"]')).to_have_attribute("data-state", "done")
    expect(page.locator('#import-steps [data-step="result"]')).to_have_attribute("data-state", "done")
    assert Connection.objects.filter(owner=user).count() == 300
    assert ConnectionGroup.objects.get(owner=user, name="Nested").parent.name == "Imported"
    page.click("#import-close")
    expect(tree_folder(page, "Nested")).to_be_visible()
    expect(page.locator("#conn-tree li.tree-conn")).to_have_count(300)

    page.click("#open-import")
    expect(page.locator("#import-steps")).to_be_hidden()
    page.set_input_files("#import-file", str(bad))
    page.click("#import-start")
    expect(page.locator("#import-error")).to_have_text(
        "connections[3].port: Ensure this value is less than or equal to 65535."
    )
    expect(page.locator('#import-steps [data-step="result"]')).to_have_attribute("data-state", "failed")
    expect(page.locator("#import-result")).to_be_hidden()
    page.problems.clear()  # the browser logs the 400 response itself
    assert Connection.objects.filter(owner=user).count() == 300


def test_export_downloads_json_without_credentials(page):
    user = make_user("poweruser")
    connection = make_connection(user, "with-secrets", password="hunter2", username="root", tags=["x"])
    JumpHop.objects.create(
        connection=connection, position=0, host="10.4.4.4", username="hop", password="hop-pw"
    )
    open_connections(page, user)
    with page.expect_download() as info:
        page.click("#export-link")
    download = info.value
    assert re.fullmatch(r"pam-connections-\d{8}-\d{6}\.json", download.suggested_filename)
    with open(download.path()) as file:
        text = file.read()
    document = json.loads(text)
    assert document["version"] == 1
    assert [c["name"] for c in document["connections"]] == ["with-secrets"]
    assert document["connections"][0]["jumpHosts"] == [{"host": "10.4.4.4", "port": 22, "username": "hop"}]

    def keys(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    assert not {"password", "privateKey"} & set(keys(document))
    assert "hunter2" not in text and "hop-pw" not in text
