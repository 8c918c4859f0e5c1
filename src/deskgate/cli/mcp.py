"""`deskgate mcp`: serve the gate to an MCP client (Claude Desktop, an agent framework) as one agent.

The process holds one agent's credentials file and nothing else of the desk's, so
the tools it serves have exactly that agent's rights. stdio by default (the MCP
client starts this command); `--http` serves streamable HTTP, on loopback unless
`--allow-remote` says otherwise: the HTTP endpoint has no authentication of its own,
so anyone who can reach it acts as the agent.
"""

from __future__ import annotations

from pathlib import Path

import typer

from deskgate.cli import DataDirOption, app, fail, handle_errors, run_async


@app.command("mcp")
@handle_errors
def mcp(
    agent_credentials: Path = typer.Option(
        ..., "--agent-credentials", "-c", help="The agent's credentials file (`deskgate agent add NAME` writes it)."
    ),
    server: list[str] = typer.Option(
        [], "--server", "-s", help="Bus URL, instead of the file's (repeat for a cluster); e.g. nats://desk.example:4222."
    ),
    data_dir: Path | None = DataDirOption,
    http: bool = typer.Option(False, "--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve HTTP on."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to serve HTTP on."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Serve HTTP on an address other than loopback. It has no authentication: put it behind one."
    ),
) -> None:
    """Serve the gate over MCP as the agent whose credentials file is given.

    Tools: submit_directive, check_directive, revise_directive, get_verdict,
    wait_for_outcome, get_portfolio, get_market, get_guardrails. Resources: the
    directive JSON Schema and the desk's guardrails. See docs/CLIENT.md.
    """
    if http and not allow_remote and not _loopback(host):
        fail(f"--host {host} is not one of 127.0.0.1, localhost or ::1 (the loopback names guarded against DNS rebinding); "
             "the MCP endpoint has no authentication, so serving it there needs --allow-remote")
    run_async(_serve(agent_credentials, server or None, data_dir, http=http, host=host, port=port))


async def _serve(credentials: Path, servers: list[str] | None, data_dir: Path | None, *, http: bool, host: str, port: int) -> None:
    from deskgate.client import DeskClient
    from deskgate.client.mcp_server import build_server

    creds, servers = _connection(credentials, servers, data_dir)
    client = await DeskClient.connect(creds, servers=servers)
    try:
        mcp_server = build_server(client)
        if http:
            await mcp_server.run_streamable_http_async(host=host, port=port)
        else:
            await mcp_server.run_stdio_async()
    finally:
        await client.close()


def _connection(credentials: Path, servers: list[str] | None, data_dir: Path | None):
    """The agent's credentials and the bus addresses to use (None: the file's). With a data directory,
    its bus's TLS applies whatever the address (--server too): the desk's own agents' file carries
    neither the bus's address nor its TLS, so the password never goes to a bus that has not proved
    itself with the desk's CA."""
    from deskgate.client import CredentialsError
    from deskgate.identity.credentials import read_credentials

    try:
        creds = read_credentials(credentials)
    except ValueError as exc:
        raise CredentialsError(str(exc)) from None
    if not servers and not creds.servers and data_dir is None:
        fail(f"{credentials} names no bus server (the desk's own agents read it from the data directory): give --server URL or --data-dir")
    if data_dir is None:
        return creds, servers
    from deskgate.bus.tls import endpoint_tls
    from deskgate.paths import DataDir

    try:
        endpoint = DataDir.at(data_dir).read_endpoint()
    except FileNotFoundError:
        if not servers and not creds.servers:
            raise
        endpoint = {}  # no desk has run there: the address given, the file's own TLS
    if not servers and not creds.servers:
        servers = endpoint["servers"]
    tls = endpoint_tls(endpoint)
    if tls and not creds.tls:
        creds = creds.model_copy(update={"tls": True, "tls_ca": tls.get("tls_ca")})
    return creds, servers


# The hosts the MCP SDK guards against DNS rebinding; another loopback address (127.0.0.2) would
# go unguarded, so it counts as remote here and needs --allow-remote.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS
