"""The gallery in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

Loaded from file://, as a downloaded CI artifact is. Where Chromium is missing (a fresh machine with
only Python) they are skipped with the install command, except when PROMPTFORM_REQUIRE_BROWSER=1:
.ci/run installs Chromium and sets it, so CI cannot pass without them. PROMPTFORM_SKIP_BROWSER=1
skips them on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from promptform.cli import main
from promptform.core.images import sniff
from tests.support.files import write_files

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# Read at import: the hermetic fixture clears PROMPTFORM_* variables before each test runs.
SKIP = os.environ.get("PROMPTFORM_SKIP_BROWSER") == "1"
REQUIRE = os.environ.get("PROMPTFORM_REQUIRE_BROWSER") == "1"
# Set to regenerate the README's screenshots in docs/ (otherwise they go to a temp folder).
UPDATE_DOCS = os.environ.get("PROMPTFORM_UPDATE_DOCS") == "1"
DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 1200, 800

pytestmark = pytest.mark.skipif(SKIP, reason="PROMPTFORM_SKIP_BROWSER=1")

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
size = "256x256"
quality = "low"
"""

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": CONFIG,
    "templates/house.j2": "Flat vector style, soft light.",
    "prompts/marketing/hero.yaml": """
        name: marketing/hero
        size: 384x256
        n: 2
        prompt: |
          {% include "house.j2" %}
          A lighthouse on a cliff at dusk.
        """,
    "prompts/social/animals.yaml": """
        name: social/animal
        matrix:
          animal: [fox, owl, heron]
        prompt: |
          {% include "house.j2" %}
          A {{ animal }} in a misty forest.
        """,
    "prompts/icons.yaml": "name: icons/app\nprompt: A rounded app icon of a paper plane.\n",
}


def git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }
    subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def promptform(*args: str | Path) -> None:
    assert main([str(arg) for arg in args]) == 0


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A branch that rewrote the hero prompt and added a target, applied offline, and its report."""
    root = write_files(tmp_path_factory.mktemp("browser") / "repo", PROJECT)
    git(root, "init", "-q", "-b", "main")
    promptform("-C", root, "apply", "--yes")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first apply")
    git(root, "checkout", "-q", "-b", "feature")
    (root / "prompts/marketing/hero.yaml").write_text(
        (root / "prompts/marketing/hero.yaml").read_text().replace("at dusk", "at sunrise")
    )
    (root / "prompts/social/badge.yaml").write_text("name: social/badge\nprompt: A round badge.\n")
    promptform("-C", root, "apply", "--yes")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "sunrise")
    out = root.parent / "gallery"
    promptform("-C", root, "report", "--out", out)
    return out / "index.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        missing = "Chromium is not installed: `apt-get install -y chromium chromium-driver`"
        if REQUIRE:
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    home = tmp_path_factory.mktemp("chromium-home")
    service = Service(CHROMEDRIVER, env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver, gallery: Path) -> WebDriver:
    driver = browser
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    driver.get(gallery.as_uri())
    return driver


def visible_addresses(driver: WebDriver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.card:not([hidden]) .address'))"
        ".map(e => e.firstChild.textContent)"
    )


def wait_for_images(driver: WebDriver) -> list[int]:
    """Scroll every image into view (they load lazily) and return their natural widths."""
    from selenium.webdriver.support.ui import WebDriverWait

    images = driver.find_elements("css selector", ".card img")
    for image in images:
        driver.execute_script("arguments[0].scrollIntoView()", image)
        WebDriverWait(driver, 10).until(
            lambda _, image=image: driver.execute_script("return arguments[0].complete", image)
        )
    driver.execute_script("window.scrollTo(0, 0)")
    return [int(image.get_property("naturalWidth")) for image in images]


def test_page_loads_from_file_url_and_shows_every_image(page: WebDriver) -> None:
    assert page.title == "promptform gallery: repo"
    assert sorted(visible_addresses(page)) == [
        "icons/app",
        "marketing/hero",
        "social/animal[animal=fox]",
        "social/animal[animal=heron]",
        "social/animal[animal=owl]",
        "social/badge",
    ]
    widths = wait_for_images(page)
    # 2 hero + 3 animals + icon + badge now, and hero's 2 previous images.
    assert len(widths) == 9
    assert all(width > 0 for width in widths)
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []  # no CSP violation, no missing file


def test_filter_hides_cards_that_do_not_match(page: WebDriver) -> None:
    box = page.find_element("id", "filter")
    box.send_keys("owl")
    assert visible_addresses(page) == ["social/animal[animal=owl]"]
    hidden_groups = page.execute_script(
        "return Array.from(document.querySelectorAll('.group[hidden] h2')).map(e => e.textContent)"
    )
    assert sorted(hidden_groups) == [
        "prompts/icons.yaml",
        "prompts/marketing/hero.yaml",
        "prompts/social/badge.yaml",
    ]
    box.clear()
    box.send_keys("no such thing")
    assert visible_addresses(page) == []
    assert page.find_element("id", "no-match").is_displayed()


def test_changed_only_keeps_new_and_changed_cards(page: WebDriver) -> None:
    page.find_element("id", "changed-only").click()
    assert sorted(visible_addresses(page)) == ["marketing/hero", "social/badge"]


def test_changed_target_shows_before_and_after_side_by_side(page: WebDriver) -> None:
    wait_for_images(page)
    sides = page.execute_script(
        """
        const card = Array.from(document.querySelectorAll('.card'))
          .find(c => c.querySelector('.address').firstChild.textContent === 'marketing/hero');
        return Array.from(card.querySelectorAll('.side')).map(side => ({
          title: side.querySelector('h3').textContent,
          left: Math.round(side.getBoundingClientRect().left),
          top: Math.round(side.getBoundingClientRect().top),
          widths: Array.from(side.querySelectorAll('img')).map(i => i.naturalWidth),
        }));
        """
    )
    assert [side["title"] for side in sides] == ["before", "after"]
    assert sides[0]["top"] == sides[1]["top"] and sides[0]["left"] < sides[1]["left"]
    assert sides[0]["widths"] == [384, 384] and sides[1]["widths"] == [384, 384]


def test_clicking_an_image_opens_the_lightbox(page: WebDriver) -> None:
    link = page.find_element("css selector", ".card a.zoom")
    href = link.get_attribute("href")
    link.click()
    box = page.find_element("id", "lightbox")
    assert box.get_attribute("open") is not None
    assert box.find_element("css selector", "img").get_attribute("src") == href
    box.click()
    assert box.get_attribute("open") is None


def test_dark_mode_follows_the_system_setting(page: WebDriver) -> None:
    script = "return getComputedStyle(document.body).backgroundColor"
    light = page.execute_script(script)
    page.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    assert page.execute_script(script) != light


def test_screenshots_for_the_readme(page: WebDriver, tmp_path: Path) -> None:
    folder = DOCS if UPDATE_DOCS else tmp_path
    folder.mkdir(exist_ok=True)
    wait_for_images(page)
    page.save_screenshot(str(folder / "gallery.png"))
    page.find_element("id", "changed-only").click()
    page.save_screenshot(str(folder / "gallery-before-after.png"))
    for name in ("gallery.png", "gallery-before-after.png"):
        info = sniff((folder / name).read_bytes())
        assert (info.format, info.width, info.height) == ("png", WIDTH, HEIGHT)
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
