"""The fork server: services forked from one parent that holds their shared libraries, but no secret.

What must hold: a service imports only what it needs (the factory no web framework,
no model SDK); the fork server holds no role's credentials or keys, so no service
inherits another's; the services stay the supervisor's own children, and neither a
killed fork server nor a killed service stops the desk.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization

from deskgate.config import Mission
from deskgate.forkserver import PRELOAD, ForkedProcess
from deskgate.paths import DataDir
from deskgate.services import SERVICE_CLASSES
from deskgate.stack import Stack

# What no service other than the one named may hold.
WEB = {"fastapi", "starlette", "uvicorn", "jinja2", "prometheus_client"}
MODELS = {"pydantic_ai", "openai", "anthropic", "httpx", "logfire"}
CLI = {"typer", "click", "rich"}
PASSKEYS = {"webauthn", "OpenSSL", "cbor2"}  # only when a principal registers or uses a passkey
NOT_NEEDED = {
    "factory": WEB | MODELS | CLI | PASSKEYS | {"argon2", "feedparser", "markdown_it"},
    "executor": WEB | MODELS | CLI | PASSKEYS | {"argon2", "feedparser", "markdown_it"},
    "audit": WEB | MODELS | CLI | PASSKEYS | {"argon2", "feedparser", "markdown_it"},
    "marketdata": WEB | MODELS | CLI | PASSKEYS | {"argon2"},
    "agents": WEB | MODELS | CLI | PASSKEYS,  # the offline analyst; pydantic-ai only for a model
    "web": MODELS | {"typer", "rich"} | PASSKEYS,  # uvicorn brings click
}


def _modules_of(*modules: str) -> set[str]:
    """sys.modules of a fresh interpreter after the fork server's imports and these."""
    code = (
        "import importlib, json, sys\n"
        "from deskgate.forkserver import PRELOAD\n"
        f"for m in (*PRELOAD, *{list(modules)!r}): importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120).stdout
    return set(json.loads(out))


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} | modules


def test_each_service_imports_only_what_it_needs():
    assert set(NOT_NEEDED) == set(SERVICE_CLASSES)
    preloaded = _packages(_modules_of())
    every_not_needed = set.union(*NOT_NEEDED.values())
    assert not preloaded & every_not_needed, "the fork server gives every service these"
    for name, target in SERVICE_CLASSES.items():
        held = _packages(_modules_of(target.split(":")[0]))
        assert not held & NOT_NEEDED[name], f"{name} imports {sorted(held & NOT_NEEDED[name])}"


def test_the_fork_server_imports_nothing_from_a_data_directory():
    """Its imports open module files only: no credential, key, mission or database."""
    code = (
        "import importlib, json, sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' and isinstance(args[0], (str, bytes)) else None)\n"
        "from deskgate.forkserver import PRELOAD\n"
        "for m in PRELOAD: importlib.import_module(m)\n"
        "print(json.dumps(opened))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120).stdout
    roots = [os.path.realpath(p) for p in sys.path if p] + [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)]
    strays = [p for p in json.loads(out) if not any(os.path.realpath(p).startswith(r) for r in roots)]
    assert strays == []


def _mission() -> Mission:
    return Mission.model_validate({"marketdata": {"source": "none"}, "web": {"port": 0}})


def _memory(pid: int) -> bytes:
    """Every readable mapping of a process: our own child, so ptrace rules let its parent
    read it (a PermissionError here fails the test: the property cannot go unchecked)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, OverflowError, ValueError):
                continue
    return b"\0".join(chunks)


def _secrets(data_dir: DataDir) -> dict[str, list[bytes]]:
    """Each role's bus password, and each role's private key as PEM body and as raw bytes; each
    agent identity's bus password and private key (its credentials file), as `agent:<name>`."""
    out: dict[str, list[bytes]] = {}
    for role, entry in json.loads(data_dir.credentials.read_text()).items():
        out.setdefault(role, []).append(entry["password"].encode())
    for path in (data_dir.root / "agents").glob("*.json"):
        creds = json.loads(path.read_text())
        out[f"agent:{creds['agent']}"] = [creds["password"].encode(), creds["private_key"].encode(), base64.b64decode(creds["private_key"])]
    for pem in (data_dir.keys / "private").glob("*.pem"):
        text = pem.read_bytes()
        key = serialization.load_pem_private_key(text, password=None)
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        body = b"".join(line for line in text.splitlines() if not line.startswith(b"-----"))
        out.setdefault(f"key:{pem.stem}", []).extend([raw, body])
    return out


@pytest.mark.slow
def test_the_fork_server_holds_no_secret_and_a_forked_service_its_own(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(_mission(), data_dir, services=("executor",), restart=False, fork=True).start()
    try:
        server = stack._forkserver.process.pid
        executor = stack.children["executor"].process.pid
        server_memory, executor_memory = _memory(server), _memory(executor)
        secrets = _secrets(data_dir)
        assert {"factory", "agent:desk", "executor", "key:factory"} <= set(secrets)
        held = sorted(name for name, values in secrets.items() if any(v in server_memory for v in values))
        assert held == [], f"the fork server holds {held}"
        # The same search finds what the executor loaded after its fork: the search works.
        assert any(v in executor_memory for v in secrets["executor"])
        assert any(v in executor_memory for v in secrets["key:executor"])
        assert not any(v in executor_memory for v in secrets["key:factory"])
    finally:
        stack.stop()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _restart(stack: Stack, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while name not in stack.supervise_once():
        assert time.monotonic() < deadline, f"{name} was not restarted"
        time.sleep(0.1)
    stack.wait_ready(timeout, [name])


@pytest.mark.slow
def test_forked_services_are_the_supervisors_children_and_survive_kill_9(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(_mission(), data_dir, services=("executor", "audit"), restart=True, fork=True).start()
    try:
        for name, child in stack.children.items():
            assert isinstance(child.process, ForkedProcess)
            assert _ppid(child.process.pid) == os.getpid()
            with open(f"/proc/{child.process.pid}/comm") as fh:
                assert fh.read().strip() == f"dg-{name}"

        # kill -9 the fork server: what runs keeps running; the next spawn gets a new one.
        first = stack._forkserver.process
        first.kill()
        first.wait(5)
        assert all(c.process.poll() is None for c in stack.children.values())

        # kill -9 a service: the supervisor restarts it, forked from the new fork server.
        stack.kill_service("executor")
        assert stack.children["executor"].process.returncode == -signal.SIGKILL
        _restart(stack, "executor")
        again = stack.children["executor"].process
        assert isinstance(again, ForkedProcess) and _ppid(again.pid) == os.getpid()
        assert stack._forkserver.process is not first and stack._forkserver.alive()
    finally:
        stack.stop()
    assert {n: c.process.returncode for n, c in stack.children.items()} == {"executor": 0, "audit": 0}
    assert stack._forkserver.process is None  # stopped with the desk


@pytest.mark.slow
def test_without_the_fork_server_each_service_is_its_own_interpreter(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(_mission(), data_dir, services=("executor",), restart=False, fork=False).start()
    try:
        child = stack.children["executor"].process
        assert isinstance(child, subprocess.Popen) and stack._forkserver is None
        with open(f"/proc/{child.pid}/cmdline", "rb") as fh:
            assert fh.read().split(b"\0")[1:5] == [b"-m", b"deskgate", b"service", b"executor"]
    finally:
        stack.stop()
    assert stack.children["executor"].process.returncode == 0


def test_the_fork_server_preloads_no_single_services_own_code():
    assert len(set(PRELOAD)) == len(PRELOAD)
    assert not any(m.startswith(("deskgate.factory", "deskgate.web", "deskgate.agents")) for m in PRELOAD)


@pytest.mark.slow
def test_only_the_agents_get_the_models_api_key(tmp_path, monkeypatch):
    """The model's key is the agents' alone: not in the fork server, not in another service."""
    canary = "sk-canary-" + os.urandom(8).hex()
    monkeypatch.setenv("ANTHROPIC_API_KEY", canary)
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(_mission(), data_dir, services=("executor",), restart=False, fork=True).start()
    try:
        assert stack.service_env("agents")["ANTHROPIC_API_KEY"] == canary
        assert "ANTHROPIC_API_KEY" not in stack.service_env("factory")
        for pid in (stack._forkserver.process.pid, stack.children["executor"].process.pid):
            memory = _memory(pid)
            assert canary.encode() not in memory, f"pid {pid} holds the model's key"
    finally:
        stack.stop()


def test_a_failed_hand_over_leaves_no_untracked_service_running():
    """What the supervisor does before starting a service again after the fork server failed
    mid-request: a forked copy it never took on is killed; the services it tracks are not."""
    from deskgate.forkserver import kill_untracked_services

    code = "import ctypes, time; ctypes.CDLL(None).prctl(15, b'dg-stray', 0, 0, 0); time.sleep(60)"
    stray = subprocess.Popen([sys.executable, "-c", code])
    kept = subprocess.Popen([sys.executable, "-c", code.replace("dg-stray", "dg-kept")])
    try:
        deadline = time.monotonic() + 10
        while not all(open(f"/proc/{p.pid}/comm").read().startswith("dg-") for p in (stray, kept)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert kill_untracked_services(frozenset({kept.pid})) == [stray.pid]
        assert kept.poll() is None
    finally:
        for p in (stray, kept):
            p.kill()
            p.wait()


@pytest.mark.slow
def test_a_service_restarts_when_the_supervisors_directory_is_gone(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    here = os.getcwd()
    gone = tmp_path / "gone"
    gone.mkdir()
    stack = Stack(_mission(), data_dir, services=("executor",), restart=True, fork=True).start()
    try:
        os.chdir(gone)
        gone.rmdir()
        stack.kill_service("executor")
        _restart(stack, "executor")
        assert stack.children["executor"].process.poll() is None
    finally:
        os.chdir(here)
        stack.stop()


STOPPING = """
import asyncio, os, signal, sys
from deskgate.services import stop_on_signal

async def main(stops: bool):
    done = asyncio.Event()
    stop_on_signal(asyncio.get_running_loop(), "stuck", done.set if stops else (lambda: None), grace=0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    await done.wait()

asyncio.run(main(sys.argv[1] == "stops"))
"""


@pytest.mark.parametrize("stops", [True, False])
def test_a_service_asked_to_stop_is_gone_within_its_grace_whatever_it_waits_on(stops):
    """SIGTERM (from the supervisor, or from the kernel when the supervisor was killed): a clean stop exits 0;
    one stuck waiting on something that never comes is ended by the timer and says so."""
    proc = subprocess.run([sys.executable, "-c", STOPPING, "stops" if stops else "stuck"], capture_output=True, timeout=60)
    if stops:
        assert proc.returncode == 0 and b"did not stop" not in proc.stderr
    else:
        assert proc.returncode == 1
        assert b"stuck did not stop within 0.5 s of being asked" in proc.stderr
