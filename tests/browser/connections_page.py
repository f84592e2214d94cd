"""The console as the browser tests drive it: sign in; on the connections page, open it and
find tree items and detail buttons."""

from playwright.sync_api import expect

from tests.factories import PASSWORD


def sign_in(page, user):
    page.goto("/login")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".user-name")).to_have_text(user.get_full_name())


def open_connections(page, user=None):
    if user is not None:
        sign_in(page, user)
    page.goto("/connections")
    expect(page.locator("#conn-tree")).to_have_attribute("aria-busy", "false")


def tree_item(page, name):
    return page.locator(f'#conn-tree li.tree-conn[data-name="{name}"]')


def tree_folder(page, name):
    return page.locator(f'#conn-tree li.tree-folder[data-name="{name}"]')


def detail_button(page, name):
    return page.locator("#conn-detail").get_by_role("button", name=name, exact=True)


def shown_names(page):
    return page.locator("#conn-tree li.tree-conn").evaluate_all("items => items.map(i => i.dataset.name)")


def expect_names(page, names):
    """Wait until the tree shows exactly these connections (in any order)."""
    expect(page.locator("#conn-tree li.tree-conn")).to_have_count(len(names))
    for name in names:
        expect(tree_item(page, name)).to_be_visible()
    assert sorted(shown_names(page)) == sorted(names)


def select(page, name):
    tree_item(page, name).locator(".tree-label").click()
    expect(page.locator("#detail-title")).to_have_text(name)
