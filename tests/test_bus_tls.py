"""TLS on the bus (`bus.tls`), with real nats-server processes on loopback: clients must speak TLS
and trust the desk's CA; a cluster's routes present certificates from it; the CA is made once and
kept; `deskgate bus-config` renders an operator's TLS files into node configs that form a cluster."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from conftest import active_agents, add_test_people, directive, ensure_credentials, publish_bar, raw, wait_cluster_formed, wait_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from deskgate.bus.cluster import node_name, start_cluster
from deskgate.bus.connect import connect_as, connect_with
from deskgate.bus.credentials import connect_kwargs, load_credentials
from deskgate.bus.reader import last_message
from deskgate.bus.reload import apply_agents
from deskgate.bus.server import free_port, nats_server_binary, read_config, start_nats, write_endpoint
from deskgate.bus.streams import provision
from deskgate.bus.subjects import Role, bar_subject
from deskgate.bus.tls import DeskTLS, TLSError, ensure_desk_tls, read_ca
from deskgate.client import DeskClient, DeskUnreachable
from deskgate.config import MissionError, parse_mission
from deskgate.domain.market import Bar
from deskgate.identity.credentials import write_credentials
from deskgate.identity.registry import AgentRegistry
from deskgate.paths import DataDir

pytestmark = pytest.mark.slow


def fingerprint(path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).fingerprint(hashes.SHA256())


def start_tls_bus(data_dir: DataDir, port: int = 0):
    """One nats-server with TLS, as `deskgate up` starts it with bus.tls: true."""
    tls = ensure_desk_tls(data_dir.ensure())
    server = start_nats(data_dir, ensure_credentials(data_dir), active_agents(data_dir), port=port, tls=tls)
    write_endpoint(data_dir, [server.url], embedded=True, monitor_url=server.monitor_url, pid=server.pid, tls=True, tls_ca=tls.ca_cert)
    return server, tls


async def provision_streams(data_dir: DataDir) -> None:
    admin, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
    await provision(admin.jetstream())
    await admin.close()


def plaintext_exchange(port: int, user: str, password: str) -> tuple[bytes, bytes]:
    """What a client that never starts TLS sees: the server's INFO, then whatever answers its CONNECT and PING."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        info = b""
        while not info.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            info += chunk
        s.sendall(b"CONNECT " + json.dumps({"user": user, "pass": password, "verbose": False}).encode() + b"\r\nPING\r\n")
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return info, answer


async def test_a_tls_bus_serves_clients_that_trust_its_ca_and_refuses_the_others(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    server, tls = start_tls_bus(data_dir)
    try:
        assert server.url.startswith("tls://127.0.0.1:")
        endpoint = json.loads(data_dir.endpoint.read_text())
        assert endpoint["tls"] is True and endpoint["tls_ca"] == str(tls.ca_cert) and endpoint["servers"] == [server.url]
        conf = read_config(data_dir.nats_conf)
        assert conf["tls"]["cert_file"] == str(tls.cert) and conf["tls"]["key_file"] == str(tls.key) and "verify" not in conf["tls"]

        # The service roles connect over TLS with the desk's CA (connect_kwargs carries its PEM), and use streams.
        kwargs = connect_kwargs(data_dir, Role.MARKETDATA)
        assert kwargs["tls_ca"] == tls.ca_cert.read_text() and kwargs["tls_handshake_first"] is True
        admin, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
        await provision(admin.jetstream())
        await admin.close()
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        ack = await md.jetstream().publish(bar_subject("BTC"), Bar.at_price("BTC", 65_000.0, "test").to_bytes())
        await md.close()
        observer, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False)
        try:
            got = await last_message(observer, ack.stream, bar_subject("BTC"))
            assert got is not None and Bar.model_validate_json(got.data).close == 65_000.0
        finally:
            await observer.close()

        # A plaintext client is refused: the server says TLS is required and never answers its PING.
        port = int(server.url.rsplit(":", 1)[1])
        creds = load_credentials(data_dir, Role.OBSERVER)
        info, answer = plaintext_exchange(port, creds.user, creds.password)
        assert info.startswith(b"INFO ") and json.loads(info[5:])["tls_required"] is True
        assert b"PONG" not in answer and b"+OK" not in answer

        # A client that does not trust the desk's CA (the system's CAs, or another desk's) is refused.
        plain = {k: v for k, v in kwargs.items() if k != "tls_ca"}
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect_with(plain, reconnect=False)
        other = ensure_desk_tls(DataDir.at(tmp_path / "other-desk").ensure())
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect_with({**kwargs, "tls_ca": other.ca_cert.read_text()}, reconnect=False)

        # An outside agent's credentials file carries the CA: the client needs nothing else.
        registry = AgentRegistry.open(data_dir)
        creds_file = tmp_path / "outside.json"
        agent = registry.add("outside", [server.url]).model_copy(update={"tls": True, "tls_ca": read_ca(tls.ca_cert)})
        write_credentials(creds_file, agent)
        assert apply_agents(data_dir, bus_url=None, max_payload=1_048_576).how == "reloaded"  # the reload keeps the TLS block
        assert read_config(data_dir.nats_conf)["tls"] == conf["tls"]
        client = await DeskClient.connect(creds_file, reconnect=False)
        await client.close()
        impostor = tmp_path / "impostor.json"
        write_credentials(impostor, agent.model_copy(update={"tls_ca": other.ca_cert.read_text()}))
        with pytest.raises(DeskUnreachable, match="is not the desk's: its TLS certificate does not come from the CA"):
            await DeskClient.connect(impostor, reconnect=False)
    finally:
        server.stop()


async def test_the_ca_and_certificate_are_made_once_kept_private_and_reused(tmp_path):
    """A second start uses the same CA (clients holding it keep working) and the same certificate;
    the keys are 0600. Only the server certificate is made again, when it nears its end or no longer
    fits; the CA never silently."""
    data_dir = DataDir.at(tmp_path / "desk")
    server, tls = start_tls_bus(data_dir)
    ca_before, cert_before = fingerprint(tls.ca_cert), fingerprint(tls.cert)
    held_ca = connect_kwargs(data_dir, Role.OBSERVER)["tls_ca"]  # what a client was given before the restart
    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    for path in (tls.ca_key, tls.key):
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(tls.dir.stat().st_mode & 0o777) == "0o700"

    server, again = start_tls_bus(data_dir, port=port)
    try:
        assert again == tls and fingerprint(tls.ca_cert) == ca_before and fingerprint(tls.cert) == cert_before
        nc, _ = await connect_with({**connect_kwargs(data_dir, Role.OBSERVER), "tls_ca": held_ca}, reconnect=False)
        await nc.close()
    finally:
        server.stop()

    # Near its end, or for another host, the server certificate is made again from the same CA.
    later = datetime.now(timezone.utc) + timedelta(days=380)
    ensure_desk_tls(data_dir, now=later)
    renewed = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    assert fingerprint(tls.ca_cert) == ca_before and renewed.not_valid_after_utc > later + timedelta(days=300)
    ensure_desk_tls(data_dir, host="10.1.2.3")
    sans = x509.load_pem_x509_certificate(tls.cert.read_bytes()).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "10.1.2.3"}
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert oct(tls.key.stat().st_mode & 0o777) == "0o600"

    # A certificate that must be made again, with the CA's key gone: refused, naming the key.
    os.rename(tls.ca_key, tls.dir / "ca-key.away")
    ensure_desk_tls(data_dir, host="10.1.2.3")  # still valid: nothing to sign, nothing asked
    with pytest.raises(TLSError, match="the CA's key .*ca-key.pem is missing"):
        ensure_desk_tls(data_dir, host="10.9.9.9")
    # The CA's certificate gone but its key there: never replaced silently.
    os.rename(tls.dir / "ca-key.away", tls.ca_key)
    tls.ca_cert.unlink()
    with pytest.raises(TLSError, match="CA certificate .*ca.pem is missing but its key"):
        ensure_desk_tls(data_dir)
    # A CA near its end: refused with what to do, not replaced.
    fresh = DataDir.at(tmp_path / "fresh").ensure()
    ensure_desk_tls(fresh)
    with pytest.raises(TLSError, match="expires on .* does not replace it silently"):
        ensure_desk_tls(fresh, now=datetime.now(timezone.utc) + timedelta(days=3640))


async def test_a_three_node_cluster_with_tls_routes_forms_and_replicates(tmp_path):
    """The routes present the desk's certificate and check each other's (`verify`), beside the route
    password: the cluster forms, a stream has three replicas, a message written through one node is
    read through another. A server with another CA's certificate and the right password is refused."""
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    tls = ensure_desk_tls(data_dir)
    cluster = start_cluster(data_dir, ensure_credentials(data_dir), active_agents(data_dir), tls=tls)
    intruder = None
    try:
        cluster.write_endpoint()
        assert all(url.startswith("tls://") for url in cluster.urls)
        conf = read_config(cluster.node_dir(0) / "nats.conf")
        assert conf["cluster"]["tls"]["verify"] is True and conf["cluster"]["tls"]["ca_file"] == str(tls.ca_cert)
        assert conf["cluster"]["tls"]["cert_file"] == conf["tls"]["cert_file"] == str(tls.cert)
        admin, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
        await provision(admin.jetstream(), replicas=3)
        info = await admin.jetstream().stream_info("MARKET")
        await admin.close()
        assert info.config.num_replicas == 3 and len(info.cluster.replicas) == 2

        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False, servers=[cluster.urls[0]])
        await publish_bar(md, "ETH", 3_000.0)
        await md.close()
        observer, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False, servers=[cluster.urls[2]])
        try:
            got = await last_message(observer, "MARKET", bar_subject("ETH"), current=True)
            assert got is not None and Bar.model_validate_json(got.data).close == 3_000.0
        finally:
            await observer.close()

        # Another CA's certificate with the right route password: the nodes refuse its route.
        other = ensure_desk_tls(DataDir.at(tmp_path / "other").ensure())
        node_conf = read_config(cluster.node_dir(0) / "nats.conf")
        route_block = {**node_conf["cluster"], "listen": f"127.0.0.1:{free_port()}",
                       "tls": {**node_conf["cluster"]["tls"], "cert_file": str(other.cert), "key_file": str(other.key)}}
        intruder_conf = tmp_path / "intruder.conf"
        intruder_log = tmp_path / "intruder.log"
        intruder_conf.write_text(json.dumps({"server_name": "intruder", "listen": f"127.0.0.1:{free_port()}", "cluster": route_block}))
        with open(intruder_log, "wb") as log:
            intruder = subprocess.Popen([str(nats_server_binary()), "-c", str(intruder_conf)], stdout=log, stderr=subprocess.STDOUT)
        node_logs = [cluster.node_dir(i) / "nats.log" for i in range(3)]

        def refused() -> bool:
            return any("TLS route handshake error" in p.read_text(errors="replace") and "unknown authority" in p.read_text(errors="replace")
                       for p in node_logs)
        await wait_for(refused, timeout=30, interval=0.2)
        for i in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{cluster.ports[i].monitor}/routez", timeout=5) as r:
                names = {route.get("remote_name") for route in json.loads(r.read())["routes"]}
            assert "intruder" not in names and names == {node_name(j) for j in range(3) if j != i}
    finally:
        if intruder is not None:
            intruder.kill()
            intruder.wait(10)
        cluster.stop()


def test_bus_config_renders_an_operators_tls_into_configs_that_form_a_cluster(tmp_path):
    """`deskgate bus-config --routes ... --tls-cert --tls-key --tls-ca`: every node config requires TLS
    of clients and of routes, with the operator's files. Three real nats-servers started on them form
    one cluster, and a client trusting the operator's CA connects. Files that cannot work are refused."""
    from test_cli import run

    run("init", str(tmp_path))
    data = tmp_path / "deskgate-data"
    theirs = ensure_desk_tls(DataDir.at(tmp_path / "operator-pki").ensure())  # the operator's own CA and node certificate
    routes = [free_port() for _ in range(3)]
    tls_args = ["--tls-cert", str(theirs.cert), "--tls-key", str(theirs.key), "--tls-ca", str(theirs.ca_cert)]
    run("bus-config", "--data-dir", str(data), "--routes", ",".join(f"127.0.0.1:{p}" for p in routes), "--store-dir", str(tmp_path / "js"), *tls_args)

    procs, monitors, clients = [], [], []
    try:
        for i in range(3):
            node = data / "bus" / f"{node_name(i)}.conf"
            text = node.read_text()
            assert f'"cert_file": "{theirs.cert}"' in text and '"verify": true' in text and "Clients connect with TLS only" in text
            monitors.append(free_port())
            clients.append(free_port())
            wrapper = data / "bus" / f"operator-{i}.conf"
            wrapper.write_text(f'listen: "127.0.0.1:{clients[-1]}"\nhttp: "127.0.0.1:{monitors[-1]}"\ninclude "{node.name}"\n')
            procs.append(subprocess.Popen([str(nats_server_binary()), "-c", str(wrapper)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        wait_cluster_formed(monitors[0])

        creds = load_credentials(DataDir.at(data), Role.PROVISIONER)
        kwargs = {"servers": [f"tls://127.0.0.1:{clients[1]}"], "user": creds.user, "password": creds.password,
                  "tls_handshake_first": True, "tls_ca": read_ca(theirs.ca_cert)}

        async def connect_and_close():
            nc, _ = await connect_with(kwargs, reconnect=False)
            await nc.close()

        asyncio.run(connect_and_close())
    finally:
        for p in procs:
            p.kill()
            p.wait(10)

    # Refused with the reason, and nothing written: a key that is not the certificate's, a CA that is not there,
    # a CA that did not sign the certificate, a relative path, TLS without --routes.
    other = ensure_desk_tls(DataDir.at(tmp_path / "other-pki").ensure())
    route_arg = ["--routes", ",".join(f"127.0.0.1:{p}" for p in routes)]
    for args, says in [
        (["--tls-cert", str(theirs.cert), "--tls-key", str(other.key), "--tls-ca", str(theirs.ca_cert)], b"does not match the certificate"),
        (["--tls-cert", str(theirs.cert), "--tls-key", str(theirs.key), "--tls-ca", str(tmp_path / "nope.pem")], b"does not exist"),
        (["--tls-cert", str(theirs.cert), "--tls-key", str(theirs.key), "--tls-ca", str(other.ca_cert)], b"is not signed by the CA"),
        (["--tls-cert", "server.pem", "--tls-key", str(theirs.key), "--tls-ca", str(theirs.ca_cert)], b"must be an absolute path"),
        (["--tls-cert", str(theirs.cert), "--tls-key", str(theirs.key)], b"route TLS needs the CA"),
    ]:
        bad = run("bus-config", "--data-dir", str(data), *route_arg, *args, check=False)
        assert bad.returncode == 2 and says in bad.stderr, (args, bad.stderr)
    bad = run("bus-config", "--data-dir", str(data), *tls_args, check=False)
    assert bad.returncode == 2 and b"only --routes writes" in bad.stderr


def test_tls_settings_are_checked_with_the_reason(tmp_path):
    for bad, reason in (({"tls_ca": "/etc/ca.pem"}, "tls_ca names the CA of an operator-run bus"),
                        ({"url": "nats://bus.example:4222", "tls_ca": "/etc/ca.pem"}, "set tls: true as well"),
                        ({"url": "wss://bus.example:443", "tls": True}, "a websocket bus takes wss://")):
        with pytest.raises(MissionError, match=reason):
            parse_mission({"bus": bad})
    assert parse_mission({"bus": {"tls": True}}).bus.tls is True
    from deskgate.config import load_mission

    (tmp_path / "mission.yaml").write_text("bus:\n  url: nats://bus.example:4222\n  tls: true\n  tls_ca: pki/ca.pem\n")
    assert load_mission(tmp_path / "mission.yaml").bus.tls_ca == str(tmp_path / "pki" / "ca.pem")
    with pytest.raises(TLSError, match="ca.pem does not exist"):
        read_ca(tmp_path / "pki" / "ca.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TLSError, match="holds no PEM certificate"):
        read_ca(tmp_path / "junk.pem")


async def test_up_with_bus_tls_stages_a_directive_over_tls(tmp_path):
    """`deskgate up` with bus.tls: true: the bus requires TLS, the factory and the desk's agents connect
    with the desk's CA, and a directive is staged; `deskgate agent add` gives an outside agent a
    credentials file that carries the CA, and the client connects with that alone."""
    from test_cli import run
    from test_crash import crash_mission

    from deskgate.agents.submit import AgentClient
    from deskgate.stack import Stack

    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    mission = crash_mission().model_copy(update={"bus": crash_mission().bus.model_copy(update={"tls": True})})
    stack = Stack(mission, data_dir, services=("factory",), restart=False).start()
    try:
        assert stack.url.startswith("tls://") and stack.tls == DeskTLS.of(data_dir)
        assert read_config(data_dir.nats_conf)["tls"]["cert_file"] == str(stack.tls.cert)
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        await asyncio.sleep(0.3)  # the factory's mark
        agent = await AgentClient.connect(data_dir)
        try:
            (v,) = await agent.submit_payloads([raw(directive("over-tls", notional_usd=100))], wait=20)
        finally:
            await agent.close()
        assert v is not None and v.decision == "staged"

        added = await asyncio.to_thread(run, "agent", "add", "outside", "--data-dir", str(data_dir.root), "--json")
        path = json.loads(added.stdout)["credentials_file"]
        on_file = json.loads(open(path).read())
        assert on_file["tls"] is True and on_file["tls_ca"] == stack.tls.ca_cert.read_text() and on_file["servers"] == [stack.url]
        client = await DeskClient.connect(path, reconnect=False)
        await client.close()
    finally:
        stack.stop()


# -- the security review's findings --------------------------------------------------------------


async def test_a_ca_file_that_also_holds_a_key_gives_clients_its_certificates_only(tmp_path):
    """read_ca re-serialises the certificates: a private key in the same file never reaches
    `deskgate creds` output or an agent's credentials file."""
    from deskgate.cli.agents import _tls

    data_dir = DataDir.at(tmp_path / "desk")
    server, tls = start_tls_bus(data_dir)
    try:
        with_key = tmp_path / "ca-and-key.pem"
        with_key.write_text(tls.ca_cert.read_text() + tls.ca_key.read_text())
        assert read_ca(with_key) == tls.ca_cert.read_text() and "PRIVATE KEY" not in read_ca(with_key)
        write_endpoint(data_dir, [server.url], embedded=True, monitor_url=server.monitor_url, pid=server.pid, tls=True, tls_ca=with_key)

        kwargs = connect_kwargs(data_dir, Role.OBSERVER)  # what `deskgate creds observer` prints
        assert "PRIVATE KEY" not in json.dumps(kwargs) and kwargs["tls_ca"] == tls.ca_cert.read_text()
        nc, _ = await connect_with(kwargs, reconnect=False)
        await nc.close()

        agent_tls = _tls(parse_mission({"bus": {"tls": True}}), data_dir)  # what `deskgate agent add` writes
        creds_file = tmp_path / "outside.json"
        write_credentials(creds_file, AgentRegistry.open(data_dir).add("outside", [server.url]).model_copy(update=agent_tls))
        assert "PRIVATE KEY" not in creds_file.read_text() and json.loads(creds_file.read_text())["tls_ca"] == tls.ca_cert.read_text()
    finally:
        server.stop()


def test_a_ca_key_that_is_not_the_cas_is_refused_naming_both_files(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    tls = ensure_desk_tls(data_dir)
    other = ensure_desk_tls(DataDir.at(tmp_path / "other").ensure())
    tls.ca_key.write_bytes(other.ca_key.read_bytes())
    tls.cert.unlink()  # a certificate to sign: never with another CA's key
    with pytest.raises(TLSError, match=f"CA key {tls.ca_key} does not match the CA certificate {tls.ca_cert}"):
        ensure_desk_tls(data_dir)
    assert not tls.cert.exists()
    tls.ca_key.write_bytes(b"")
    with pytest.raises(TLSError, match=f"CA key {tls.ca_key} is not a PEM private key"):
        ensure_desk_tls(data_dir)


async def test_a_certificate_due_for_renewal_is_kept_while_the_ca_key_is_offline(tmp_path, caplog):
    """ca-key.pem kept offline: a server certificate within 30 days of its end is still used, with a
    warning, and the bus starts on it; only an expired one (or one that no longer fits) is refused.
    With the key back, it is made again from the same CA."""
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    now = datetime.now(timezone.utc)
    tls = ensure_desk_tls(data_dir, now=now - timedelta(days=397 - 10))  # the certificate has 10 days left
    ca_before, cert_before = fingerprint(tls.ca_cert), fingerprint(tls.cert)
    offline = tmp_path / "ca-key.offline"
    os.rename(tls.ca_key, offline)

    with caplog.at_level("WARNING", logger="deskgate.bus.tls"):
        assert ensure_desk_tls(data_dir) == tls
    assert fingerprint(tls.cert) == cert_before
    assert any("should be made again (it expires on" in r.getMessage() and str(tls.ca_key) in r.getMessage() for r in caplog.records)
    server = start_nats(data_dir, ensure_credentials(data_dir), active_agents(data_dir), tls=ensure_desk_tls(data_dir))
    try:
        write_endpoint(data_dir, [server.url], embedded=True, monitor_url=server.monitor_url, pid=server.pid, tls=True, tls_ca=tls.ca_cert)
        nc, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False)
        await nc.close()
    finally:
        server.stop()

    with pytest.raises(TLSError, match=r"must be made again \(it expired on .*ca-key.pem is missing"):
        ensure_desk_tls(data_dir, now=now + timedelta(days=11))
    with pytest.raises(TLSError, match=r"must be made again \(it is not valid for desk1.example.com\).*ca-key.pem is missing"):
        ensure_desk_tls(data_dir, names=["desk1.example.com"])
    os.rename(offline, tls.ca_key)
    ensure_desk_tls(data_dir)
    renewed = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    assert fingerprint(tls.ca_cert) == ca_before and fingerprint(tls.cert) != cert_before and renewed.not_valid_after_utc > now + timedelta(days=300)


async def test_a_wildcard_host_with_tls_gives_clients_loopback_and_tls_names_go_into_the_certificate(tmp_path):
    """bus.host 0.0.0.0: clients are given tls://127.0.0.1 (the certificate names no wildcard) and
    connect; bus.tls_names adds the machine's names to the certificate (a client verifying by that
    name connects); a change of names makes the certificate again, never the CA."""
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    mission = parse_mission({"bus": {"host": "0.0.0.0", "tls": True, "tls_names": ["Desk1.Example.com", "10.20.30.40"]}})
    assert mission.bus.tls_names == ("desk1.example.com", "10.20.30.40")
    tls = ensure_desk_tls(data_dir, mission.bus.host, mission.bus.tls_names)
    sans = x509.load_pem_x509_certificate(tls.cert.read_bytes()).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "desk1.example.com"]
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "10.20.30.40"}
    ca_before, cert_before = fingerprint(tls.ca_cert), fingerprint(tls.cert)

    server = start_nats(data_dir, ensure_credentials(data_dir), active_agents(data_dir), host="0.0.0.0", tls=tls)
    try:
        assert server.url.startswith("tls://127.0.0.1:") and read_config(data_dir.nats_conf)["listen"].startswith("0.0.0.0:")
        write_endpoint(data_dir, [server.url], embedded=True, monitor_url=server.monitor_url, pid=server.pid, tls=True, tls_ca=tls.ca_cert)
        nc, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False)
        await nc.close()
        nc, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False, tls_hostname="desk1.example.com")  # as a remote client would
        await nc.close()
    finally:
        server.stop()

    ensure_desk_tls(data_dir, "0.0.0.0", ("desk2.example.com",))
    sans = x509.load_pem_x509_certificate(tls.cert.read_bytes()).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "desk2.example.com"]
    assert fingerprint(tls.ca_cert) == ca_before and fingerprint(tls.cert) != cert_before

    for bad, reason in ((["0.0.0.0"], "is a wildcard address"), (["tls://desk1:4222"], "neither an IP address nor a DNS name"),
                        (["*.example.com"], "neither an IP address nor a DNS name")):
        with pytest.raises(MissionError, match=reason):
            parse_mission({"bus": {"tls": True, "tls_names": bad}})
    with pytest.raises(MissionError, match="tls_names adds names .* set tls: true"):
        parse_mission({"bus": {"tls_names": ["desk1"]}})
    with pytest.raises(MissionError, match="an operator-run bus \\(url\\) has its own certificates"):
        parse_mission({"bus": {"url": "nats://bus:4222", "tls": True, "tls_names": ["desk1"]}})


async def test_agent_add_turns_tls_on_when_the_mission_does_though_the_last_run_was_plaintext(tmp_path):
    """endpoint.json from a plaintext run, mission.yaml now with bus.tls: the credentials file carries
    TLS and the desk's CA (made now), with a tls:// address, and connects to the desk's TLS bus."""
    from test_cli import run

    run("init", str(tmp_path))
    mission_file, data = tmp_path / "mission.yaml", tmp_path / "deskgate-data"
    text = mission_file.read_text()
    assert "\n  tls: false" in text
    mission_file.write_text(text.replace("\n  tls: false", "\n  tls: true", 1))
    data_dir = DataDir.at(data)
    port = free_port()
    write_endpoint(data_dir, [f"nats://127.0.0.1:{port}"], embedded=True, monitor_url=None, pid=None)  # the last run: plaintext

    added = run("agent", "add", "outside", "--mission", str(mission_file), "--data-dir", str(data), "--json")
    path = json.loads(added.stdout)["credentials_file"]
    on_file = json.loads(open(path).read())
    tls = DeskTLS.of(data_dir)
    assert on_file["tls"] is True and on_file["tls_ca"] == tls.ca_cert.read_text() and on_file["servers"] == [f"tls://127.0.0.1:{port}"]

    server, again = start_tls_bus(data_dir, port=port)  # the next `deskgate up`: the same CA
    try:
        assert again == tls
        await provision_streams(data_dir)
        client = await DeskClient.connect(path, reconnect=False)
        await client.close()
    finally:
        server.stop()


def test_a_credentials_file_for_a_plaintext_bus_keeps_its_old_shape(tmp_path):
    """No "tls" or "tls_ca" keys when TLS is off: older clients (same format, extra fields forbidden) read it."""
    from deskgate.identity.credentials import read_credentials

    data_dir = DataDir.at(tmp_path / "desk").ensure()
    registry = AgentRegistry.open(data_dir)
    plain = write_credentials(tmp_path / "plain.json", registry.add("plain", ["nats://127.0.0.1:4222"]))
    on_file = json.loads(plain.read_text())
    assert "tls" not in on_file and "tls_ca" not in on_file
    assert read_credentials(plain).tls is False and "tls_handshake_first" not in read_credentials(plain).connect_kwargs()
    system_cas = write_credentials(tmp_path / "system.json", registry.add("system", ["tls://bus:4222"]).model_copy(update={"tls": True}))
    assert json.loads(system_cas.read_text())["tls"] is True and "tls_ca" not in json.loads(system_cas.read_text())
    assert read_credentials(system_cas).connect_kwargs()["tls_handshake_first"] is True


async def test_a_plaintext_impostor_gets_a_tls_hello_and_never_a_password(tmp_path):
    """A process on the bus's address that speaks plaintext NATS (INFO without tls_required), as one
    that took the port while the bus was down would: deskgate's clients, with the desk's TLS
    settings, send a TLS ClientHello (0x16) first and never the password. nats-py's default (TLS
    only when INFO asks for it) would have sent it: the control shows the impostor would see it."""
    import nats

    data_dir = DataDir.at(tmp_path / "desk").ensure()
    tls = ensure_desk_tls(data_dir)
    ensure_credentials(data_dir)
    received: list[bytes] = []

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"IMPOSTOR","version":"2.10.0","proto":1,"max_payload":1048576,"auth_required":true}\r\n')
        await writer.drain()
        got = b""
        try:
            while b"PING" not in got and (chunk := await asyncio.wait_for(reader.read(4096), 30)):
                got += chunk
        except (asyncio.TimeoutError, ConnectionError):
            pass
        received.append(got)
        writer.close()

    rogue = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = rogue.sockets[0].getsockname()[1]
    try:
        write_endpoint(data_dir, [f"tls://127.0.0.1:{port}"], embedded=True, monitor_url=None, pid=None, tls=True, tls_ca=tls.ca_cert)
        kwargs = connect_kwargs(data_dir, Role.OBSERVER)
        with pytest.raises(Exception):  # noqa: B017 - whatever the failure, what matters is what the impostor got
            await connect_with(kwargs, reconnect=False, connect_timeout=2)
        creds_file = tmp_path / "outside.json"
        agent = AgentRegistry.open(data_dir).add("outside", [f"tls://127.0.0.1:{port}"]).model_copy(update={"tls": True, "tls_ca": read_ca(tls.ca_cert)})
        write_credentials(creds_file, agent)
        with pytest.raises(DeskUnreachable):
            await DeskClient.connect(creds_file, reconnect=False)
        await wait_for(lambda: len(received) >= 2, timeout=30)
        assert all(got[:1] == b"\x16" for got in received), [got[:20] for got in received]
        secrets = (kwargs["password"].encode(), agent.password.encode(), b"CONNECT")
        assert not any(s in got for s in secrets for got in received)

        # The control: without the handshake first, nats-py sends CONNECT with the password in the clear.
        received.clear()
        plain = {k: v for k, v in kwargs.items() if k not in ("tls_handshake_first", "tls_ca")}
        try:  # nats-py may even call it connected: the impostor closes after the CONNECT and PING
            control = await nats.connect(**plain, tls=ssl.create_default_context(cadata=kwargs["tls_ca"]), allow_reconnect=False,
                                         max_reconnect_attempts=1, connect_timeout=2)
            await control.close()
        except Exception:  # noqa: BLE001
            pass
        await wait_for(lambda: received, timeout=30)
        assert kwargs["password"].encode() in received[0]
    finally:
        rogue.close()
        await rogue.wait_closed()


async def test_a_client_of_a_tls_cluster_fails_over_to_another_node_over_tls(tmp_path):
    """Kill the node a client is connected to: it reconnects to another node, over TLS, and its
    publishes still reach the replicated stream."""
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    tls = ensure_desk_tls(data_dir)
    cluster = start_cluster(data_dir, ensure_credentials(data_dir), active_agents(data_dir), tls=tls)
    try:
        cluster.write_endpoint()
        admin, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
        await provision(admin.jetstream(), replicas=3)
        await admin.close()
        md, _ = await connect_as(data_dir, Role.MARKETDATA)  # reconnects, as the services do
        try:
            first = md.connected_url
            assert first.scheme == "tls"
            killed = next(i for i, p in enumerate(cluster.ports) if p.client == first.port)
            cluster.kill(killed)
            await wait_for(lambda: md.is_connected and md.connected_url.port != first.port, timeout=60, interval=0.1)
            assert md.connected_url.scheme == "tls" and md.connected_url.port in {p.client for p in cluster.ports}

            async def published() -> bool:
                try:
                    await publish_bar(md, "SOL", 151.0)
                    return True
                except Exception:  # noqa: BLE001 - the stream's leader may be moving off the killed node
                    return False

            await wait_for(published, timeout=60, interval=0.5)
        finally:
            await md.close()
        observer, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False, servers=[u for i, u in enumerate(cluster.urls) if i != killed])
        try:
            got = await last_message(observer, "MARKET", bar_subject("SOL"), current=True)
            assert got is not None and Bar.model_validate_json(got.data).close == 151.0
        finally:
            await observer.close()
    finally:
        cluster.stop()


async def test_mcp_applies_the_data_directorys_tls_with_server_given(tmp_path):
    """`deskgate mcp --server URL --data-dir DIR` with a credentials file made before TLS: the data
    directory's TLS (handshake first, the desk's CA) applies, and the client connects."""
    from deskgate.cli.mcp import _connection

    data_dir = DataDir.at(tmp_path / "desk")
    server, tls = start_tls_bus(data_dir)
    try:
        old = write_credentials(tmp_path / "old.json", AgentRegistry.open(data_dir).add("old", []))
        apply_agents(data_dir, bus_url=None, max_payload=1_048_576)
        await provision_streams(data_dir)
        creds, servers = _connection(old, [server.url], data_dir.root)
        assert servers == [server.url] and creds.tls is True and creds.tls_ca == tls.ca_cert.read_text()
        client = await DeskClient.connect(creds, servers=servers, reconnect=False)
        await client.close()
        creds, _ = _connection(old, [server.url], None)  # no data directory: the file's own settings
        assert creds.tls is False
    finally:
        server.stop()
