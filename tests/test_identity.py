"""Agent identities and their credentials files, without a bus."""

from __future__ import annotations

import json
import os

import pytest

from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify
from deskgate.audit.keys import PublicKeys
from deskgate.identity.credentials import CredentialsError, read_credentials, write_credentials
from deskgate.identity.names import AgentNameError, agent_of_signer, agent_signer
from deskgate.identity.registry import AgentRegistry, IdentityError
from deskgate.paths import DataDir


@pytest.fixture
def registry(tmp_path):
    return AgentRegistry.open(DataDir.at(tmp_path / "d").ensure())


def test_add_writes_the_only_copy_of_the_secrets(registry, tmp_path):
    creds = registry.add("quant-bot", ["nats://127.0.0.1:4999"])
    ident = registry.get("quant-bot")
    assert ident is not None and not ident.revoked and ident.nats_user == creds.user == "agent-quant-bot"
    assert creds.password not in ident.nats_bcrypt and creds.private_key not in repr(ident)
    path = write_credentials(tmp_path / "q.json", creds)
    assert os.stat(path).st_mode & 0o777 == 0o600
    back = read_credentials(path)
    assert back == creds and back.desk_id == registry.desk_id()
    # The file's key signs what the registry's current key verifies.
    signer = Signer.of(back.signer, back.signing_key())
    payload = b'{"x": 1}'
    keys = PublicKeys({back.signer: registry.directive_key("quant-bot")})
    assert verify(keys, Kind.DIRECTIVE, payload, signer.name, signer.sign(Kind.DIRECTIVE, payload)) is SignatureStatus.VALID


def test_names_are_checked_and_never_reused(registry):
    registry.add("a1", ["nats://x:1"])
    with pytest.raises(IdentityError, match="exists"):
        registry.add("a1", ["nats://x:1"])
    registry.revoke("a1")
    with pytest.raises(IdentityError, match="revoked"):
        registry.add("a1", ["nats://x:1"])
    for bad in ("", "A1", "a.b", "a b", "-a", "x" * 65, "é"):
        with pytest.raises(AgentNameError):
            registry.add(bad, ["nats://x:1"])


def test_rotate_keeps_the_old_key_for_the_past_only(registry):
    first = registry.add("r", ["nats://x:1"])
    second = registry.rotate("r", ["nats://x:1"])
    assert first.key_id != second.key_id and first.password != second.password
    ident = registry.get("r")
    assert [k.key_id for k in ident.keys] == [second.key_id, first.key_id] and ident.keys[1].state == "retired"
    assert registry.directive_key("r") == second.signing_key().public_key()
    assert first.signing_key().public_key() in registry.public_keys("r")


def test_revoke_stops_directives_not_the_past(registry):
    creds = registry.add("gone", ["nats://x:1"])
    assert registry.refusal("gone") is None
    registry.revoke("gone", by="alice")
    assert registry.directive_key("gone") is None and "revoked" in registry.refusal("gone")
    assert registry.public_keys("gone") == (creds.signing_key().public_key(),)
    assert registry.active() == [] and registry.get("gone").revoked_by == "alice"
    with pytest.raises(IdentityError, match="already revoked"):
        registry.revoke("gone")
    with pytest.raises(IdentityError, match="revoked"):
        registry.rotate("gone", ["nats://x:1"])
    assert "no agent named nobody" in registry.refusal("nobody")


def test_signer_names():
    assert agent_signer("desk") == "agent:desk" and agent_of_signer("agent:desk") == "desk"
    for not_one in (None, "", "agent", "agent:", "agent:A", "principal:alice", "agent:a.b"):
        assert agent_of_signer(not_one) is None


def test_bad_credentials_files_are_named(registry, tmp_path):
    creds = registry.add("c", ["nats://x:1"])
    path = write_credentials(tmp_path / "c.json", creds)
    with pytest.raises(CredentialsError, match="exists"):
        write_credentials(path, creds)
    with pytest.raises(CredentialsError, match="no agent credentials file"):
        read_credentials(tmp_path / "missing.json")
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        read_credentials(path)
    os.chmod(path, 0o600)
    data = json.loads(path.read_text())
    for broken, why in (
        ("not json", "not JSON"),
        (json.dumps({**data, "format": "other"}), "format"),
        (json.dumps({**data, "user": "agent-other"}), "user"),
        (json.dumps({**data, "extra": 1}), "extra"),
        (json.dumps({**data, "private_key": "!!"}), "private key"),
    ):
        path.write_text(broken)
        with pytest.raises(CredentialsError, match=why):
            read_credentials(path)
    a_directory = tmp_path / "dir.json"
    a_directory.mkdir(mode=0o700)
    with pytest.raises(CredentialsError, match="cannot read"):
        read_credentials(a_directory)


def test_the_desk_agent_is_made_once_and_reissued_when_its_file_is_lost(tmp_path):
    from deskgate.identity.registry import default_credentials_path, ensure_desk_agent

    data_dir = DataDir.at(tmp_path / "d").ensure()
    first = ensure_desk_agent(data_dir)
    path = default_credentials_path(data_dir, "desk")
    assert os.stat(path).st_mode & 0o777 == 0o600 and first.servers == ()
    assert ensure_desk_agent(data_dir) == first
    path.unlink()
    second = ensure_desk_agent(data_dir)
    assert second.key_id != first.key_id and read_credentials(path) == second
    keys = AgentRegistry.open(data_dir).public_keys("desk")
    assert first.signing_key().public_key() in keys  # the lost key still verifies the past
    with pytest.raises(CredentialsError, match="no bus server"):
        second.connect_kwargs()


def test_secrets_stay_out_of_reprs_and_a_planted_link_is_not_written_through(registry, tmp_path):
    creds = registry.add("quiet", ["nats://x:1"])
    assert creds.password not in repr(creds) and creds.private_key not in repr(creds) and "quiet" in repr(creds)
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched")
    (tmp_path / "q.json.tmp").symlink_to(target)
    write_credentials(tmp_path / "q.json", creds)
    assert target.read_text() == "untouched" and read_credentials(tmp_path / "q.json") == creds
