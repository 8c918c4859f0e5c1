"""`make test` sets itself up on a fresh Debian machine, Chromium included.

Chromium cannot be uninstalled on a shared test machine, so scripts/ensure-chromium
runs here with a PATH holding only stand-ins for `id`, `sudo` and `apt-get` that
record how they were called: the real ones are never reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure-chromium"
INSTALL = "env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium"
UPDATE = "env DEBIAN_FRONTEND=noninteractive apt-get update"


def _tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


class FakeSystem:
    """A PATH with only what the script may call, each recording its calls."""

    def __init__(self, tmp_path: Path, *, uid: int = 0, sudo: str | None = None, apt: bool = True, install_fails_first: bool = False):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.log.touch()
        self.browser = tmp_path / "usr-bin" / "chromium"
        for real in ("env", "true"):
            os.symlink(shutil.which(real), self.bin / real)
        _tool(self.bin, "id", f'[ "$1" = "-u" ] && echo {uid}')
        if sudo == "passwordless":
            _tool(self.bin, "sudo", f'echo "sudo $*" >> {self.log}\n[ "$1" = "-n" ] && shift\nexec "$@"')
        elif sudo == "asks-password":
            _tool(self.bin, "sudo", f'echo "sudo $*" >> {self.log}\necho "sudo: a password is required" >&2\nexit 1')
        if apt:
            fail_first = "1" if install_fails_first else "0"
            _tool(
                self.bin,
                "apt-get",
                f'echo "apt-get $*" >> {self.log}\n'
                f'case "$1" in\n'
                f'  update) : > {tmp_path}/updated ;;\n'
                f'  install)\n'
                f'    if [ {fail_first} = 1 ] && [ ! -e {tmp_path}/updated ]; then echo "E: Unable to locate package chromium" >&2; exit 100; fi\n'
                f'    /bin/mkdir -p {self.browser.parent} && printf "#!/bin/sh\\n" > {self.browser} && /bin/chmod 755 {self.browser} ;;\n'
                f'esac',
            )

    def run(self, browser: Path | str | None = None, *, dry_run: bool = False) -> subprocess.CompletedProcess:
        env = {"PATH": str(self.bin), "DESKGATE_CHROMIUM": str(browser or self.browser)}
        if dry_run:
            env["DRY_RUN"] = "1"
        return subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def test_a_present_browser_installs_nothing(tmp_path):
    system = FakeSystem(tmp_path)
    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    proc = system.run(present)
    assert proc.returncode == 0, proc.stderr
    assert system.calls() == []


def test_as_root_a_dry_run_prints_the_debian_install(tmp_path):
    system = FakeSystem(tmp_path, uid=0)
    proc = system.run("/nonexistent/chromium", dry_run=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [INSTALL]
    assert system.calls() == []  # a dry run runs nothing


def test_as_root_it_installs_and_updates_the_package_lists_when_the_first_try_fails(tmp_path):
    system = FakeSystem(tmp_path, uid=0, install_fails_first=True)
    proc = system.run()
    assert proc.returncode == 0, proc.stderr
    assert system.calls() == [
        "apt-get install -y --no-install-recommends chromium",
        "apt-get update",
        "apt-get install -y --no-install-recommends chromium",
    ]
    assert system.browser.exists()


def test_without_root_it_uses_passwordless_sudo(tmp_path):
    system = FakeSystem(tmp_path, uid=1000, sudo="passwordless")
    proc = system.run(dry_run=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"sudo -n {INSTALL}"]
    proc = system.run()
    assert proc.returncode == 0, proc.stderr
    assert system.calls()[-2:] == [f"sudo -n {INSTALL}", "apt-get install -y --no-install-recommends chromium"]
    assert system.browser.exists()


@pytest.mark.parametrize("sudo", [None, "asks-password"])
def test_without_root_or_passwordless_sudo_it_says_exactly_what_to_run(tmp_path, sudo):
    system = FakeSystem(tmp_path, uid=1000, sudo=sudo)
    proc = system.run()
    assert proc.returncode == 1
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" in proc.stderr
    assert not [c for c in system.calls() if "apt-get" in c]  # only `sudo -n true` was tried
    assert not system.browser.exists()


def test_off_debian_it_names_the_variable_to_set(tmp_path):
    system = FakeSystem(tmp_path, uid=0, apt=False)
    proc = system.run()
    assert proc.returncode == 1
    assert "no apt-get" in proc.stderr and "DESKGATE_CHROMIUM=" in proc.stderr


def test_an_install_that_leaves_no_browser_where_the_tests_look_is_an_error(tmp_path):
    system = FakeSystem(tmp_path, uid=0)
    proc = system.run(tmp_path / "elsewhere" / "chromium")
    assert proc.returncode == 1
    assert "still missing" in proc.stderr and "DESKGATE_CHROMIUM=" in proc.stderr


def test_make_test_ensures_chromium_before_the_suite_and_ci_just_runs_it():
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "scripts/ensure-chromium" in plan and "pytest" in plan
    assert plan.index("scripts/ensure-chromium") < plan.index("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1] == "make test"
    assert "apt-get" not in ci  # one place installs the browser: the Makefile's script
