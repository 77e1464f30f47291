"""The playground page in headless Chromium: upload a photo, see the answer, press a button."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import BotEnv

playwright = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags the sandboxed, offline machines need: no setuid sandbox as root, no background calls.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test "
                                             "installs it where it can)")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page, not the database
async def test_upload_a_photo_and_correct_the_answer(bot_env: BotEnv,
                                                     shared_datasets: Path) -> None:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(bot_env.fake.url)
        await page.set_input_files("#photo-input",
                                   shared_datasets / "imagenet-dogs-121" / "n02110958-pug.jpg")
        answer = page.locator(".message.bot", has_text="Looks like a pug")
        await answer.wait_for(timeout=30_000)
        await answer.locator(".keyboard button", has_text="Right").click()
        await page.locator(".message.bot", has_text="Noted that it's a pug").wait_for()
        await browser.close()
    assert bot_env.rows("select label, kind from corrections") == [("n02110958", "confirmed")]
