"""Helpers for passkey tests in real headless Chromium: Debian's browser and a CDP virtual authenticator.

The virtual authenticator is Chromium's own (DevTools' WebAuthn domain): a platform
authenticator ("internal", CTAP2) with resident keys and user verification, which
confirms presence by itself. Pages using it must be a secure context on a host name
(WebAuthn refuses IP-address rp ids): https, or http://localhost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright

CHROMIUM = os.environ.get("DESKGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/test_web_browser.py launches it
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


async def launch_chromium(p: Playwright) -> Browser:
    """Debian's Chromium, headless; never a downloaded browser."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does) to run the browser tests")
    return await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@dataclass
class VirtualAuthenticator:
    """One CDP virtual authenticator attached to one page's target."""

    cdp: CDPSession
    authenticator_id: str

    async def credentials(self) -> list[dict]:
        """What the authenticator holds: each with credentialId (base64), rpId, signCount, userHandle."""
        got = await self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        return got["credentials"]

    async def set_user_verified(self, verified: bool) -> None:
        await self.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": self.authenticator_id, "isUserVerified": verified})

    async def remove(self) -> None:
        await self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.authenticator_id})


async def add_virtual_authenticator(context: BrowserContext, page: Page) -> VirtualAuthenticator:
    """Give `page` a platform passkey authenticator that says yes without a person (automatic presence)."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return VirtualAuthenticator(cdp, added["authenticatorId"])
