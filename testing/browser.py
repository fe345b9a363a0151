"""Playwright with Debian's chromium (never a downloaded browser), and logging in through the real form."""

import os
import shutil
from contextlib import contextmanager

# Playwright's sync API runs an event loop in this thread; the ORM calls in tests are ordinary sync code.
# Set on import, as the browser test modules import this module when they are collected.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def chromium():
    """Debian's chromium launched by Playwright, closed when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield b
        b.close()


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")
    page.wait_for_selector("#nav-account")


def type_program(page, text: str) -> None:
    """Replace the launch form's program with ``text`` as a user would: in the code editor when it is
    there (select all, then insert the text in one input, so no auto-indent is applied), else in the
    plain textarea. Editing switches the form to "Paste a program"."""
    page.wait_for_function(
        "document.querySelector('.program-editor .cm-content') || window.AspireCodeMirror === undefined"
    )
    if page.locator(".program-editor .cm-content").count():
        # The task's starter program loads (and is checked) first; typing before that would be overwritten.
        page.wait_for_function("(document.getElementById('program-check') || {}).textContent !== ''")
        page.click(".program-editor .cm-content")
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(text)
        page.wait_for_function(
            "(t) => document.getElementById('id_program').value.trim() === t.trim()", arg=text, timeout=10_000
        )
    else:
        page.check("input[name=program_source][value=pasted]")
        page.fill("#id_program", text)


def open_live_page(browser, base_url: str, path: str, username: str, password: str, width: int):
    """A new browser context ``width`` px wide, signed in, on ``path`` once its live stream says "live";
    ``window.notReloaded`` is set, so a test can tell the page kept itself current without a reload.
    Returns (context, page)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log_in(page, base_url, username, password)
    page.goto(f"{base_url}{path}")
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    page.evaluate("window.notReloaded = true")
    return context, page
