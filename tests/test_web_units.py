"""The Command Center's pure parts: the period funnel, throttling waits, charts, metrics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.breaker import BreakerState
from deskgate.domain.evaluation import PolicyEvaluation, PolicyVerdict
from deskgate.domain.funnel import LATENCY_BUCKETS_MS, Funnel, LatencyHistogram
from deskgate.people.accounts import login_wait_seconds
from deskgate.web.charts import downsample, line_chart
from deskgate.web.metrics import families
from deskgate.web.periods import period_funnel

T0 = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def verdict(did: str, decision: str, at: datetime, reason: str | None = None) -> PolicyVerdict:
    ev = PolicyEvaluation(directive_id=did, decision="staged" if decision == "staged" else "rejected", explicit_approval=False, checks=[])
    return PolicyVerdict(directive_id=did, seq=1, decision=decision, primary_reason=reason, evaluation=ev, at=at)


def outcome(did: str, what: str, at: datetime, reason: str = "") -> ApprovalOutcome:
    return ApprovalOutcome(directive_id=did, outcome=what, at=at, reason=reason)


def test_the_period_funnel_follows_directives_received_in_the_period_to_where_they_stand():
    m = timedelta(minutes=1)
    verdicts = [
        verdict("old", "staged", T0 - 10 * m),  # before the period: not counted, even if decided inside it
        verdict("a", "staged", T0 + m),
        verdict("b", "staged", T0 + m),
        verdict("c", "staged", T0 + m),
        verdict("d", "staged", T0 + m),
        verdict("x", "rejected", T0 + m, "asset"),
        verdict("a", "duplicate", T0 + 2 * m, "duplicate"),
        verdict("late", "staged", T0 + 90 * m),  # after the period's end
    ]
    outcomes = [
        outcome("old", "ordered", T0 + 2 * m),
        outcome("a", "refused", T0 + 2 * m, "bad"),  # changes nothing
        outcome("a", "ordered", T0 + 3 * m),
        outcome("a", "executed", T0 + 4 * m),
        outcome("b", "rejected", T0 + 3 * m, "no"),
        outcome("b", "ordered", T0 + 4 * m),  # after a terminal state: ignored
        outcome("c", "invalidated", T0 + 3 * m, "price_band: moved 3%"),
        outcome("d", "awaiting_second_approval", T0 + 3 * m),
    ]
    f = period_funnel(verdicts, outcomes, T0, T0 + 2 * 60 * m, until=T0 + 60 * m)
    assert (f.received, f.staged, f.policy_rejected, f.duplicates) == (6, 4, 1, 1)
    assert (f.approved, f.executed, f.human_rejected, f.invalidated, f.pending) == (2, 1, 1, 1, 1)
    assert f.policy_rejections_by_reason == {"asset": 1}
    assert f.human_rejections_by_reason == {"no": 1} and f.invalidations_by_reason == {"price_band": 1}


@given(failures=st.integers(0, 40), allowed=st.integers(1, 10), ago=st.floats(0, 5000), cap=st.floats(1, 3600))
def test_login_waits_start_after_the_allowed_failures_double_and_are_capped(failures, allowed, ago, cap):
    now = T0
    wait = login_wait_seconds(failures, now - timedelta(seconds=ago), now, allowed, cap)
    assert 0 <= wait <= cap + 1e-6  # timedelta keeps microseconds
    if failures < allowed:
        assert wait == 0
    elif ago == 0:
        assert abs(wait - min(cap, 2.0 ** (failures - allowed))) < 1e-5
    more = login_wait_seconds(failures + 1, now - timedelta(seconds=ago), now, allowed, cap)
    assert more >= wait


def test_charts_escape_their_text_and_keep_the_ends_when_downsampling():
    points = [(T0 + timedelta(seconds=i), float(i)) for i in range(5000)]
    small = downsample(points, 100)
    assert len(small) == 100 and small[0] == points[0] and small[-1] == points[-1]
    svg = line_chart(points, title="<b>equity</b>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and svg.count("<polyline") == 1
    assert "no data yet" in line_chart([], title="empty")


def test_metrics_histogram_is_cumulative_and_ends_at_inf():
    per_bucket = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    per_bucket[0], per_bucket[3], per_bucket[-1] = 2, 5, 1
    h = LatencyHistogram.from_buckets(per_bucket, 42.0)
    assert h.count == 8 and h.cumulative[0] == 2 and h.cumulative[3] == 7 and h.cumulative[-1] == 7
    fams = families(Funnel(at=T0, staged=3, evaluation_latency=h), BreakerState(state="tripped"), None, 2)
    hist = next(f for f in fams if f.name == "deskgate_policy_evaluation_seconds")
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 8
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)
    tripped = next(f for f in fams if f.name == "deskgate_breaker_tripped")
    assert tripped.samples[0].value == 1


def test_failures_are_forgotten_after_a_quiet_hour_and_in_flight_attempts_count(tmp_path):
    from deskgate.paths import DataDir
    from deskgate.people.accounts import Accounts

    clock = [T0]
    accounts = Accounts.open(DataDir.at(tmp_path).ensure(), clock=lambda: clock[0])
    key = ["addr:10.0.0.1"]
    for _ in range(25):
        accounts.record_login_failure(key)
    assert accounts.login_wait(key, 20, 900) == 32  # 2 ** (25 - 20)
    clock[0] += timedelta(minutes=61)
    assert accounts.login_wait(key, 20, 900) == 0
    accounts.record_login_failure(key)
    assert accounts.login_wait(key, 1, 900) == 1  # counting again from one
    # Five attempts still being checked count as five failures made just now.
    assert accounts.login_wait(["user:x"], 5, 900, in_flight={"user:x": 4}) == 0
    assert accounts.login_wait(["user:x"], 5, 900, in_flight={"user:x": 5}) == 1
