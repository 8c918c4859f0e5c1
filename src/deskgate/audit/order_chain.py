"""Does an order verify back to a principal's approval of that exact directive?

The executor runs this before it fills anything. Every link is checked, and the
first that fails is named: the factory's signature on the order; the staged
record it carries, signed by the factory, which says whether the directive needs
two principals and until when it may be approved; the agent's signature on the
directive, which must be the one that was staged; that the order is that
directive (id, asset, venue, side, size, leverage); and that the approvals are
distinct principals' own signed "approve" of the SHA-256 of those directive
bytes, as many as it requires, and that the factory ordered it before the staged
record expired.

The directive's signature is checked against every key its agent ever had, not only
the keys that may sign a directive now: revoking (or rotating) an agent refuses its
*new* directives at the factory's intake, while a directive already staged and
approved by a principal stays executable. The people who approved it decided on it;
a principal who no longer wants it rejects it while it is pending. That
a directive is filled at most once is the executor's own record
(execution/service.py), not this function's.
"""

from __future__ import annotations

from pydantic import ValidationError

from deskgate.audit.keys import AGENT_SIGNERS, DecidingKeys, KeyStore, PublicKeys, principal_signer
from deskgate.audit.signing import Kind, SignatureStatus, digest, verify_headers, verify_signed
from deskgate.domain.approval import ApprovalResponse, StagedDirective
from deskgate.domain.directive import Directive
from deskgate.domain.execution import Order
from deskgate.policy.symbols import SymbolError, normalise_symbol, normalise_venue

OK = SignatureStatus.VALID


def order_problem(
    keys: DecidingKeys | KeyStore | PublicKeys,
    order: Order,
    payload: bytes,
    headers: dict[str, str] | None,
    *,
    explicit_above_usd: float | None = None,
    four_eyes_above_usd: float | None = None,
) -> str | None:
    """None when the chain verifies; otherwise why the order must not be executed.
    The executor passes `KeyStore.deciding`: approvals count only when signed with an
    enabled principal's current sealed key. It also passes its own mission's thresholds:
    how many people an order needs is not taken from the factory's word alone, so a
    stolen factory key cannot turn a four-eyes directive into a one-person one."""
    status = verify_headers(keys, Kind.ORDER, payload, headers, expect="factory")
    if status is not OK:
        return f"the order's signature is {status.value}; orders must be signed by the factory"
    if order.staged is None:
        return "the order carries no staged record"
    status = verify_signed(keys, Kind.STAGED, order.staged, expect="factory")
    if status is not OK:
        return f"the staged record's signature is {status.value}; it must be the factory's"
    try:
        staged = StagedDirective.model_validate_json(order.staged.payload)
    except ValidationError:
        return "the staged record is not a valid staged directive"
    if order.directive is None:
        return "the order carries no signed directive"
    if staged.signed_directive is None or staged.signed_directive != order.directive:
        return "the order's directive is not the one that was staged"
    past = keys.store if isinstance(keys, DecidingKeys) else keys
    status = verify_signed(past, Kind.DIRECTIVE, order.directive, expect=AGENT_SIGNERS)
    if status is not OK:
        return f"the directive's signature ({order.directive.signer}) is {status.value}; directives must be signed by an agent's own key"
    try:
        directive = Directive.model_validate_json(order.directive.payload)
    except ValidationError:
        return "the signed directive is not a valid directive"
    if directive != staged.directive:
        return "the staged record shows a different directive from the signed one"
    mismatch = _mismatch(order, directive, staged)
    if mismatch:
        return f"the order is not the signed directive: {mismatch}"
    if not order.signed_approvals:
        return "the order carries no principal's signed approval"
    if len(order.signed_approvals) != len(order.approvals):
        return "the order's approvals are not the signed ones it carries"
    directive_digest = digest(order.directive.data)
    refs = {a.approval_id: a for a in order.approvals}
    signers: set[str] = set()
    batched = False
    for signed in order.signed_approvals:
        status = verify_signed(keys, Kind.APPROVAL, signed, expect="principal:")
        if status is not OK:
            return f"the approval signed as {signed.signer} is {status.value}; approvals must be signed by a principal"
        try:
            resp = ApprovalResponse.model_validate_json(signed.payload)
        except ValidationError:
            return f"the approval signed by {signed.signer} is not a valid decision"
        try:
            named = principal_signer(resp.principal)
        except ValueError:
            named = ""
        if signed.signer != named:
            return f"the approval names {resp.principal} but is signed by {signed.signer}"
        if resp.decision != "approve":
            return f"{resp.principal}'s signed decision is {resp.decision}, not approve"
        if resp.directive_id != order.directive_id:
            return f"{resp.principal}'s approval is for {resp.directive_id}, not {order.directive_id}"
        if resp.directive_digest != directive_digest:
            return f"{resp.principal}'s approval names a different directive (digest mismatch)"
        ref = refs.get(resp.approval_id)
        if ref is None or principal_signer(ref.principal) != signed.signer:
            return "the order's approvals are not the signed ones it carries"
        if signed.signer in signers:
            return f"{resp.principal} approved twice; a second approval must come from another principal"
        signers.add(signed.signer)
        batched = batched or resp.batch_id is not None
    try:
        late = order.created_at > staged.expires_at  # both the factory's clock: when it ordered, and until when it could
    except TypeError:
        return "the order's or the staged record's time has no time zone"
    if late:
        return f"the order was made after the directive expired at {staged.expires_at.isoformat()}"
    explicit = staged.explicit or (explicit_above_usd is not None and directive.notional_usd > explicit_above_usd)
    four_eyes = staged.four_eyes or (explicit and four_eyes_above_usd is not None and directive.notional_usd > four_eyes_above_usd)
    if explicit and batched:
        return "an explicit directive was approved in a batch"
    if four_eyes and len(signers) < 2:
        return "this directive needs two different principals' approvals"
    return None


def _mismatch(order: Order, d: Directive, staged: StagedDirective) -> str | None:
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
    if venue != order.venue or order.venue != staged.venue:
        return f"venue {venue} != {order.venue}"
    if order.asset != sym.base or order.asset != staged.asset:
        return f"asset {d.asset} is not {order.asset}"
    return None
