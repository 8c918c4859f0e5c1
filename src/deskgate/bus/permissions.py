"""Per-role publish and subscribe allow-lists for nats-server, derived from the subject map.

The broker enforces them: a denied publish is dropped by the server and reported
to the client asynchronously. Each role has its own inbox prefix, so no role can
read another's request replies (JetStream API answers, pulled messages). Inside the
agent role each agent identity is its own user with the role's rights, except that
it reads only its own inbox (`_INBOX_agent.<name>`), never another agent's.

What a role gets:
  publish   the subject families it publishes; pull/ack on the durable consumers
            it owns; direct get and (not the agent) the leader's message get, both
            read-only, on the streams it may read. Nothing else: no stream or consumer admin.
  subscribe the subject families it reads (live), and its own inbox.
Everything not allowed is refused; the deny lists repeat the most important
refusals so that a future, wider allow entry cannot silently open them. Each role
is also an account of its own (bus/accounts.py), which is what keeps JetStream's
answers from being aimed at subjects the role may not publish.
"""

from __future__ import annotations

from deskgate.bus.streams import DURABLES
from deskgate.bus.subjects import GOVERNOR_STATE_SUBJECT, SUBJECTS, Role
from deskgate.identity.names import BUILT_IN_AGENT, agent_inbox_prefix

# JetStream and system subjects no service role may ever publish to.
ADMIN_SUBJECTS: tuple[str, ...] = (
    "$JS.API.STREAM.CREATE.>",
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.SNAPSHOT.>",
    "$JS.API.STREAM.RESTORE.>",
    "$JS.API.STREAM.LEADER.>",
    "$JS.API.STREAM.PEER.>",
    "$JS.API.CONSUMER.CREATE.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.>",
    "$JS.API.CONSUMER.DELETE.>",
    "$JS.API.CONSUMER.PAUSE.>",
    "$JS.API.CONSUMER.UNPIN.>",
    "$JS.API.CONSUMER.LEADER.>",
    "$JS.API.ACCOUNT.>",
    "$JS.API.META.>",
    "$JS.API.SERVER.>",
    "$SYS.>",
)


def inbox_prefix(role: Role | str) -> str:
    return f"_INBOX_{Role(role).value}"


def readable_streams(role: Role) -> list[str]:
    streams = {f.stream for f in SUBJECTS if f.stream and role in f.readers}
    return sorted(streams)


def check_stream_readers_uniform() -> None:
    """A stream is read whole (direct get), so all its families must share readers."""
    by_stream: dict[str, frozenset[Role]] = {}
    for f in SUBJECTS:
        if f.stream is None:
            continue
        seen = by_stream.setdefault(f.stream, f.readers)
        if seen != f.readers:
            raise AssertionError(f"stream {f.stream} mixes families with different readers")


def permissions_for(role: Role | str) -> dict:
    role = Role(role)
    if role is Role.PROVISIONER:
        return {
            "publish": {"allow": ["$JS.API.>"]},
            "subscribe": {"allow": [f"{inbox_prefix(role)}.>"]},
        }
    check_stream_readers_uniform()

    pub_allow: list[str] = [f.pattern for f in SUBJECTS if role in f.publishers]
    pub_deny: list[str] = [f.pattern for f in SUBJECTS if role not in f.publishers]
    for d in DURABLES:
        if d.owner is role:
            pub_allow += [f"$JS.API.CONSUMER.MSG.NEXT.{d.stream}.{d.name}", f"$JS.ACK.{d.stream}.{d.name}.>"]
    for stream in readable_streams(role):
        pub_allow += [f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"]
        # The same reads answered by the stream's leader only (bus/reader.py, `current`): one
        # exact subject, read-only, never the `$JS.API.STREAM.>` admin family around it. Not for
        # the agent role, which DESIGN §3 keeps off every `$JS.API.STREAM.` subject; the agents
        # decide nothing on a read that must be current (the factory re-reads what they send).
        if role is not Role.AGENT:
            pub_allow.append(f"$JS.API.STREAM.MSG.GET.{stream}")
    pub_deny += list(ADMIN_SUBJECTS)

    sub_allow = [f.pattern for f in SUBJECTS if role in f.readers] + [f"{inbox_prefix(role)}.>"]
    sub_deny = [f.pattern for f in SUBJECTS if role not in f.readers] + ["_INBOX.>"]
    sub_deny += [f"{inbox_prefix(other)}.>" for other in Role if other is not role]

    return {
        "publish": {"allow": pub_allow, "deny": pub_deny},
        "subscribe": {"allow": sub_allow, "deny": sub_deny},
    }


def agent_permissions(name: str) -> dict:
    """One agent identity's permissions: the agent role's, but its inbox is its own, and
    only the desk's built-in agents publish the Governor's state.

    The role's `_INBOX_agent.>` would let one agent read every other agent's replies
    (publish acknowledgements, direct-get answers); each gets only its subtree. The
    Governor's state is heeded only when signed by the built-in agents' key
    (domain/governor.py); refusing everyone else at the broker also keeps the stream
    free of states that would only be read and refused.
    """
    perms = permissions_for(Role.AGENT)
    own = f"{agent_inbox_prefix(name)}.>"
    role_inbox = f"{inbox_prefix(Role.AGENT)}.>"
    sub_allow = [own if s == role_inbox else s for s in perms["subscribe"]["allow"]]
    if own not in sub_allow:
        raise AssertionError(f"the agent role's permissions no longer name its inbox {role_inbox}")
    publish = perms["publish"]
    if name != BUILT_IN_AGENT:
        publish = {"allow": publish["allow"], "deny": [*publish["deny"], GOVERNOR_STATE_SUBJECT]}
    return {"publish": publish, "subscribe": {"allow": sub_allow, "deny": perms["subscribe"]["deny"]}}
