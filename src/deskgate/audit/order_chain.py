"""Does an order verify back to a principal's approval of that exact directive?

The executor runs this before it fills anything. Every link is checked, and the
first that fails is named: the factory's signature on the order, the agent's
signature on the directive it carries, that the order is that directive (id,
asset, venue, side, size, leverage), and that each approval is a principal's own
signed "approve" naming the SHA-256 of those directive bytes.
"""

from __future__ import annotations

from pydantic import ValidationError

from deskgate.audit.keys import KeyStore, PublicKeys, principal_signer
from deskgate.audit.signing import Kind, SignatureStatus, digest, verify_headers, verify_signed
from deskgate.domain.approval import ApprovalResponse
from deskgate.domain.directive import Directive
from deskgate.domain.execution import Order
from deskgate.policy.symbols import SymbolError, normalise_symbol, normalise_venue

OK = SignatureStatus.VALID


def order_problem(keys: KeyStore | PublicKeys, order: Order, payload: bytes, headers: dict[str, str] | None) -> str | None:
    """None when the chain verifies; otherwise why the order must not be executed."""
    status = verify_headers(keys, Kind.ORDER, payload, headers, expect="factory")
    if status is not OK:
        return f"the order's signature is {status.value}; orders must be signed by the factory"
    if order.directive is None:
        return "the order carries no signed directive"
    status = verify_signed(keys, Kind.DIRECTIVE, order.directive, expect="agent")
    if status is not OK:
        return f"the directive's signature is {status.value}; directives must be signed by the agent"
    try:
        directive = Directive.model_validate_json(order.directive.payload)
    except ValidationError:
        return "the signed directive is not a valid directive"
    mismatch = _mismatch(order, directive)
    if mismatch:
        return f"the order is not the signed directive: {mismatch}"
    if not order.signed_approvals:
        return "the order carries no principal's signed approval"
    directive_digest = digest(order.directive.data)
    approval_ids = set()
    for signed in order.signed_approvals:
        status = verify_signed(keys, Kind.APPROVAL, signed, expect="principal:")
        if status is not OK:
            return f"the approval signed as {signed.signer} is {status.value}; approvals must be signed by a principal"
        try:
            resp = ApprovalResponse.model_validate_json(signed.payload)
        except ValidationError:
            return f"the approval signed by {signed.signer} is not a valid decision"
        if signed.signer != principal_signer(resp.principal):
            return f"the approval names {resp.principal} but is signed by {signed.signer}"
        if resp.decision != "approve":
            return f"{resp.principal}'s signed decision is {resp.decision}, not approve"
        if resp.directive_id != order.directive_id:
            return f"{resp.principal}'s approval is for {resp.directive_id}, not {order.directive_id}"
        if resp.directive_digest != directive_digest:
            return f"{resp.principal}'s approval names a different directive (digest mismatch)"
        approval_ids.add(resp.approval_id)
    if approval_ids != {a.approval_id for a in order.approvals}:
        return "the order's approvals are not the signed ones it carries"
    return None


def _mismatch(order: Order, d: Directive) -> str | None:
    if d.directive_id != order.directive_id:
        return f"directive id {d.directive_id} != {order.directive_id}"
    if d.side != order.side:
        return f"side {d.side} != {order.side}"
    if d.notional_usd != order.notional_usd:
        return f"notional {d.notional_usd} != {order.notional_usd}"
    if d.leverage != order.leverage:
        return f"leverage {d.leverage} != {order.leverage}"
    try:
        venue = normalise_venue(d.venue)
        sym = normalise_symbol(d.asset)
    except (SymbolError, ValueError) as exc:
        return str(exc)
    if venue != order.venue:
        return f"venue {venue} != {order.venue}"
    if order.asset not in {sym.canonical, sym.base, *sym.candidates}:
        return f"asset {d.asset} is not {order.asset}"
    return None
