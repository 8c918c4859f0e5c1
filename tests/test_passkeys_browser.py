"""Passkeys in real headless Chromium: passkey.js, Chromium's WebAuthn and deskgate.people.passkeys together.

A tiny page on http://localhost:<port> (rp id "localhost", under the Command Center's
CSP, so no inline script) loads the real static/passkey.js; Chromium's CDP virtual
authenticator answers. The Python side makes the options and checks the answers.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timezone
from pathlib import Path

import pytest
import uvicorn
from browser_passkeys import add_virtual_authenticator, launch_chromium
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

import deskgate.web
from deskgate.audit.signing import Kind
from deskgate.people.passkeys import (
    PasskeyError,
    assertion_from_browser,
    challenge_for,
    decision_digest,
    decode_assertion,
    encode_assertion,
    registration_options,
    request_options,
    verify_assertion,
    verify_registration,
)

pytestmark = [pytest.mark.browser]

RP = "localhost"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
STATIC = Path(deskgate.web.__file__).parent / "static"
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"  # the Command Center's
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>passkey test</title><link rel="icon" href="data:,">
<script src="/static/passkey.js"></script></head><body><p>passkey test page</p></body></html>"""
D1 = decision_digest(Kind.APPROVAL, b'{"directive_digest":"aa","outcome":"approve","principal":"alice"}')
D2 = decision_digest(Kind.APPROVAL, b'{"directive_digest":"bb","outcome":"approve","principal":"alice"}')


async def _page(request):
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})


def _app() -> Starlette:
    return Starlette(routes=[Route("/", _page), Mount("/static", StaticFiles(directory=STATIC))])


@pytest.fixture
async def site():
    """The test page served on a free loopback port, named by host name: WebAuthn needs `localhost`, not an IP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_app(), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://localhost:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def passkey_page(site):
    """A Chromium page on the test site with a virtual authenticator; console errors are collected."""
    async with async_playwright() as p:
        browser = await launch_chromium(p)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            authenticator = await add_virtual_authenticator(context, page)
            await page.goto(site)
            yield page, authenticator, errors
        finally:
            await browser.close()


async def register(page, *, exclude=()) -> tuple[dict, bytes]:
    options, challenge = registration_options(rp_id=RP, rp_name="deskgate test", principal="alice", user_id=b"alice-1",
                                              exclude=list(exclude))
    return await page.evaluate("o => window.deskgatePasskey.register(o)", options), challenge


async def approve(page, stored, digests: list[str]):
    options = request_options(rp_id=RP, digests=digests, credentials=[stored])
    answer = await page.evaluate("o => window.deskgatePasskey.assert(JSON.stringify(o))", options)  # a JSON string works too
    return encode_assertion(assertion_from_browser(answer, digests))


def altered(header: str, field: str, index: int) -> str:
    """The header after one byte of one field changed in transit."""
    a = decode_assertion(header)
    raw = bytearray(base64url_to_bytes(getattr(a, field)))
    raw[index % len(raw)] ^= 0x01
    return encode_assertion(a.model_copy(update={field: bytes_to_base64url(bytes(raw))}))


async def test_a_passkey_registered_in_chromium_signs_a_decision_and_nothing_else(passkey_page):
    page, authenticator, errors = passkey_page
    assert await page.evaluate("typeof window.deskgatePasskey.register") == "function"

    credential, challenge = await register(page)
    stored = verify_registration(credential, expected_challenge=challenge, rp_id=RP, principal="alice", label="virtual", now=NOW)
    held = await authenticator.credentials()
    assert [base64url_to_bytes(c["credentialId"].replace("+", "-").replace("/", "_")) for c in held] == [base64url_to_bytes(stored.credential_id)]
    assert held[0]["rpId"] == RP

    header = await approve(page, stored, [D1])
    first = verify_assertion(decode_assertion(header), [stored], digest=D1, rp_id=RP)
    assert first >= 1  # Chromium's virtual authenticator counts its signatures

    # Presented for another decision: refused, whether as is or re-labelled.
    with pytest.raises(PasskeyError, match="does not cover this decision"):
        verify_assertion(decode_assertion(header), [stored], digest=D2, rp_id=RP)
    relabelled = decode_assertion(header).model_copy(update={"digests": [D2]})
    with pytest.raises(PasskeyError, match="signed a different challenge"):
        verify_assertion(relabelled, [stored], digest=D2, rp_id=RP)

    # Altered in transit by one byte: refused.
    for field, index, reason in [
        ("signature", 8, "signature does not verify"),
        ("authenticator_data", 33, "signature does not verify"),
        ("client_data_json", -2, "client data cannot be read|signature does not verify"),
    ]:
        with pytest.raises(PasskeyError, match=reason):
            verify_assertion(decode_assertion(altered(header, field, index)), [stored], digest=D1, rp_id=RP)

    # One touch covers a batch; each decision in it verifies.
    batch = await approve(page, stored, [D1, D2])
    assert decode_assertion(batch).digests == [D1, D2]
    assert verify_assertion(decode_assertion(batch), [stored], digest=D2, rp_id=RP) > first
    assert errors == []


async def test_chromium_refuses_to_register_the_same_authenticator_twice(passkey_page):
    page, authenticator, errors = passkey_page
    credential, challenge = await register(page)
    stored = verify_registration(credential, expected_challenge=challenge, rp_id=RP, principal="alice", now=NOW)
    with pytest.raises(PlaywrightError, match="InvalidStateError"):
        await register(page, exclude=[stored])
    assert len(await authenticator.credentials()) == 1


async def test_a_registration_for_another_challenge_or_site_is_refused(passkey_page):
    page, _, _ = passkey_page
    credential, challenge = await register(page)
    with pytest.raises(PasskeyError, match="answers another challenge"):
        verify_registration(credential, expected_challenge=challenge_for([D1]), rp_id=RP, principal="alice", now=NOW)
    with pytest.raises(PasskeyError, match="not this desk's site"):
        verify_registration(credential, expected_challenge=challenge, rp_id="desk.example", principal="alice", now=NOW)
    assert verify_registration(credential, expected_challenge=challenge, rp_id=RP, principal="alice", now=NOW).principal == "alice"
