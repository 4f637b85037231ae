"""Open-model load as pure logic: rate profiles, arrival times, the split across generators and the
bookkeeping, on a fake clock (nothing sleeps)."""

from __future__ import annotations

import math
import statistics

import pytest

from reliability.config import parse_scenario
from reliability.exceptions import ScenarioError
from reliability.shapes.arrival import (
    ArrivalBook,
    ArrivalSequence,
    Assignment,
    MergedBook,
    RateProfile,
    RateSegment,
    load_section,
    split,
)
from reliability.shapes.spec import ArrivalRateShapeSpec, CapacitySearchSpec


def _all(seq: ArrivalSequence) -> list[tuple[int, float]]:
    out = []
    while (a := seq.next_own()) is not None:
        out.append((a.k, a.at_s))
    return out


def test_uniform_constant_rate_is_evenly_spaced_and_exact() -> None:
    profile = RateProfile.from_stages([(2.0, 100.0, 100.0, "steady")])
    arrivals = _all(ArrivalSequence(profile, "uniform", seed=1))
    assert len(arrivals) == 200
    assert arrivals[0][1] == pytest.approx(0.005)
    gaps = {round(b[1] - a[1], 9) for a, b in zip(arrivals, arrivals[1:], strict=False)}
    assert gaps == {0.01}
    assert all(0 <= t < 2.0 for _, t in arrivals)


def test_a_ramp_follows_the_integral_of_the_rate() -> None:
    # 0 -> 100/s over 10 s: expected(t) = 5 t^2, so arrival k sits at sqrt((k + 0.5) / 5)
    profile = RateProfile.from_stages([(10.0, 0.0, 100.0, "ramp")])
    assert profile.expected(10.0) == pytest.approx(500.0)
    assert profile.rate_at(5.0) == pytest.approx(50.0)
    arrivals = _all(ArrivalSequence(profile, "uniform", seed=1))
    assert len(arrivals) == 500
    for k, t in arrivals[::50]:
        assert t == pytest.approx(math.sqrt((k + 0.5) / 5.0), rel=1e-9)
    # a ramp down is the mirror image: as many arrivals, denser at the start
    down = _all(ArrivalSequence(RateProfile.from_stages([(10.0, 100.0, 0.0, "down")]), "uniform", seed=1))
    assert len(down) == 500
    assert down[0][1] < 0.01 and down[-1][1] > 9.0


def test_stages_chain_and_a_zero_rate_stage_sends_nothing() -> None:
    profile = RateProfile.from_stages([(1.0, 50.0, 50.0, "a"), (2.0, 0.0, 0.0, "quiet"), (1.0, 50.0, 50.0, "b")])
    arrivals = _all(ArrivalSequence(profile, "uniform", seed=1))
    assert len(arrivals) == 100
    assert not [t for _, t in arrivals if 1.0 <= t < 3.0]
    assert profile.expected(4.0) == pytest.approx(100.0)


@pytest.mark.parametrize("kind", ["uniform", "poisson"])
def test_generators_split_the_one_process_schedule_exactly(kind: str) -> None:
    profile = RateProfile.from_stages([(3.0, 40.0, 400.0, "ramp"), (2.0, 400.0, 400.0, "hold")])
    one = _all(ArrivalSequence(profile, kind, seed=42))
    shares = split(["w-b", "w-a", "w-c"])
    assert shares == {"w-a": (0, 3), "w-b": (1, 3), "w-c": (2, 3)}
    parts = [_all(ArrivalSequence(profile, kind, seed=42, assignments=[Assignment(0.0, i, n)]))
             for i, n in shares.values()]
    union = sorted(a for part in parts for a in part)
    assert union == one  # same arrivals, same times: nothing lost, nothing doubled
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_a_resplit_mid_run_keeps_the_union_exact() -> None:
    profile = RateProfile.from_stages([(4.0, 100.0, 100.0, "hold")])
    one = _all(ArrivalSequence(profile, "poisson", seed=3))
    # two generators until 2 s, then only the second one (the first was lost)
    a = _all(ArrivalSequence(profile, "poisson", seed=3, assignments=[Assignment(0.0, 0, 2), Assignment(2.0, 0, 0)]))
    b = _all(ArrivalSequence(profile, "poisson", seed=3, assignments=[Assignment(0.0, 1, 2), Assignment(2.0, 0, 1)]))
    assert sorted(a + b) == one
    assert all(t < 2.0 for _, t in a)


def test_poisson_arrivals_have_the_asked_rate_and_exponential_gaps() -> None:
    rate, seconds = 200.0, 100.0
    arrivals = _all(ArrivalSequence(RateProfile.from_stages([(seconds, rate, rate, "p")]), "poisson", seed=11))
    expected = rate * seconds
    assert abs(len(arrivals) - expected) < 4 * math.sqrt(expected)
    gaps = [b[1] - a[1] for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(1 / rate, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(1 / rate, rel=0.05)  # exponential: sd == mean
    # the seed makes it reproducible on every node
    again = _all(ArrivalSequence(RateProfile.from_stages([(seconds, rate, rate, "p")]), "poisson", seed=11))
    assert again == arrivals


def test_an_open_profile_grows_step_by_step_and_moves_arrivals_not_yet_out() -> None:
    profile = RateProfile()
    seq = ArrivalSequence(profile, "uniform", seed=1)
    assert seq.peek_own() is None  # nothing asked yet
    profile.add(RateSegment(0.0, None, 10.0, 10.0, "step 1"))
    first = seq.next_own()
    assert first is not None and first.at_s == pytest.approx(0.05)
    upcoming = seq.peek_own()
    assert upcoming is not None and upcoming.at_s == pytest.approx(0.15)
    # a step to 100/s from 0.1 s: the next arrival (level 1.5) moves earlier, none is skipped
    profile.add(RateSegment(0.1, None, 100.0, 100.0, "step 2"))
    moved = seq.peek_own()
    assert moved is not None and moved.k == 1
    assert moved.at_s == pytest.approx(0.1 + 0.5 / 100.0)
    assert profile.expected(1.1) == pytest.approx(1.0 + 100.0)
    profile.close(1.1)
    rest = _all(seq)
    assert len(rest) == 100  # levels 1.5 .. 100.5 fall before 1.1 s
    with pytest.raises(ValueError, match="closed"):
        profile.add(RateSegment(2.0, None, 1.0, 1.0, "late"))


def test_segments_must_not_overlap() -> None:
    profile = RateProfile([RateSegment(0.0, 2.0, 1.0, 1.0, "a")])
    with pytest.raises(ValueError, match="before the previous one ends"):
        profile.add(RateSegment(1.0, 1.0, 1.0, 1.0, "b"))
    with pytest.raises(ValueError, match="rates must be finite"):
        RateSegment(0.0, 1.0, -1.0, 1.0)


def test_book_counts_starts_late_drops_and_in_flight() -> None:
    book = ArrivalBook(late_after_ms=10.0, max_delay_s=1.0)
    t0 = 1000.0
    for i in range(5):
        book.scheduled(0, t0 + i * 0.1, now=t0 + i * 0.1 + 0.002)
    assert book.take(0, t0, now=t0 + 0.003)               # on time
    assert book.take(0, t0 + 0.1, now=t0 + 0.1 + 0.050)   # 50 ms: late
    assert book.take(0, t0 + 0.2, now=t0 + 0.3)           # 100 ms: late
    assert not book.take(0, t0 + 0.3, now=t0 + 1.5)       # waited 1.2 s > max_delay_s: dropped
    book.finished()
    payload = book.payload(pending=1)
    assert (payload["scheduled"], payload["started"], payload["late"], payload["dropped"]) == (5, 3, 2, 1)
    assert (payload["in_flight"], payload["max_in_flight"], payload["finished"], payload["pending"]) == (2, 3, 1, 1)
    assert payload["segments"] == [[0, 5, 3, 1]]

    other = ArrivalBook(late_after_ms=10.0, max_delay_s=1.0)
    other.scheduled(1, t0, now=t0 + 0.004)
    assert other.take(1, t0, now=t0 + 0.004)
    other.finished()
    merged = MergedBook()
    merged.update("w1", payload)
    merged.update("w2", other.payload())
    merged.update("w1", payload)  # cumulative payloads: the latest per generator counts, once
    profile = RateProfile.from_stages([(0.3, 10.0, 10.0, "a"), (0.3, 10.0, 10.0, "b")])
    section = load_section(merged, profile, kind="uniform", seed=5, active_s=0.6, max_users=10, max_delay_s=1.0,
                           late_after_ms=10.0, generators=2)
    assert (section.scheduled, section.started, section.dropped, section.late) == (6, 4, 1, 2)
    assert section.asked == pytest.approx(6.0)
    assert section.achieved_ratio == pytest.approx(4 / 6, rel=1e-5)
    assert section.schedule_lag_ms.p50 == pytest.approx(2.0, rel=0.01)
    assert section.start_delay_ms.max == pytest.approx(100.0, rel=0.01)
    assert [s.started for s in section.stages] == [3, 1]
    assert section.pending_at_stop == 1 and section.in_flight_at_stop == 2


def _scenario(shape: dict[str, object]) -> object:
    return parse_scenario({"shape": shape}, "s.yaml").shape


def test_the_issue_yaml_parses_with_its_defaults() -> None:
    shape = _scenario({"type": "arrival_rate",
                       "stages": [{"duration_s": "30s", "rate_per_s": 100}, {"duration_s": "2m", "rate_per_s": 400}],
                       "start_rate_per_s": 100, "arrivals": "uniform", "max_users": 1000, "max_delay_s": "10s"})
    assert isinstance(shape, ArrivalRateShapeSpec)
    assert shape.rate_stages() == [(30.0, 100.0, 100.0, "stage 1"), (120.0, 100.0, 400.0, "stage 2")]
    assert shape.length_s() == pytest.approx(shape.lead_s() + 150.0 + shape.drain_s)
    one = _scenario({"type": "arrival_rate", "stages": [{"duration_s": 10, "rate_per_s": 50}]})
    assert isinstance(one, ArrivalRateShapeSpec)
    assert one.rate_stages() == [(10.0, 50.0, 50.0, "stage 1")]  # one stage = a constant rate
    assert (one.max_delay_s, one.arrivals) == (10.0, "uniform")


@pytest.mark.parametrize(("shape", "message"), [
    ({"type": "arrival_rate", "stages": [{"duration_s": 10, "rate_per_s": -1}]}, "shape.stages.0.rate_per_s"),
    ({"type": "arrival_rate", "stages": []}, "shape.stages"),
    ({"type": "arrival_rate", "stages": [{"duration_s": 10, "rate_per_s": 5}], "arrivals": "bursty"},
     "shape.arrivals"),
    ({"type": "arrival_rate", "stages": [{"duration_s": 10, "rate_per_s": 5}], "max_users": 0}, "shape.max_users"),
    ({"type": "arrival_rate", "stages": [{"duration_s": 10, "rate_per_s": 5, "users": 3}]}, "shape.stages.0.users"),
    ({"type": "arrival_rate", "stages": [{"duration_s": 10, "rate_per_s": 0}]}, "every rate_per_s is 0"),
    ({"type": "arrival_rate", "stages": [{"duration_s": "soon", "rate_per_s": 5}]}, "shape.stages.0.duration_s"),
    ({"type": "capacity_search", "start_rate_per_s": 50, "start_users": 5}, "start_users: not used in rate mode"),
    ({"type": "capacity_search", "arrivals": "poisson"}, "arrivals: only used in rate mode"),
    ({"type": "capacity_search", "start_rate_per_s": 50, "max_rate_per_s": 10}, "max_rate_per_s: must be >="),
])
def test_bad_open_model_shapes_name_file_and_field(shape: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _scenario(shape)
    text = str(info.value)
    assert text.startswith("s.yaml") and message in text.replace("[", ".").replace("]", ""), text


def test_capacity_search_rate_mode_defaults() -> None:
    shape = _scenario({"type": "capacity_search", "start_rate_per_s": 50, "step_s": "20s"})
    assert isinstance(shape, CapacitySearchSpec) and shape.rate_mode
    assert (shape.users_cap, shape.max_rate_per_s, shape.arrivals) == (1000, None, "uniform")
    users = _scenario({"type": "capacity_search"})
    assert isinstance(users, CapacitySearchSpec) and not users.rate_mode and users.users_cap == 5000


def test_capacity_search_in_rate_mode_steps_the_rate_and_finds_the_knee_in_requests_per_s() -> None:
    from reliability.shapes.capacity import CapacitySearch, WindowGrade

    search = CapacitySearch(start_users=1, step_users=1, step_s=10, max_users=200, tier="gold", breach_windows=2,
                            window_s=5, settle_s=0, start_rate_per_s=100, step_rate_per_s=50, max_rate_per_s=400)
    held_up_to = 150.0  # the fake target holds gold up to 150 arrivals/s
    now = 1000.0
    while (target := search.target(now)) is not None:
        assert target[0] == 200  # the pool never changes; the rate does
        step = search.steps[-1]
        for start_t, end_t in search.windows_due(int(now)):
            rate = next(s.rate_per_s for s in search.steps if s.started_at <= start_t < s.started_at + 10)
            assert rate is not None
            search.observe(WindowGrade(start_t, end_t, requests=int(rate * 5), failures=0, latency_ms=10.0,
                                       tiers={"gold": rate <= held_up_to}))
        assert step.rate_per_s is not None
        now += 1.0
    result = search.result(["gold"])
    assert result.mode == "rate" and result.knee is not None
    assert result.knee.rate_per_s == held_up_to
    assert result.knee.rps == pytest.approx(held_up_to)
    assert result.broke_at_rate_per_s == 200.0
    assert "200 arrivals/s" in (result.stopped_because or "")
    # grading lags a window's end, so the step after the breaking one may have begun
    assert [s.rate_per_s for s in result.steps][:3] == [100.0, 150.0, 200.0]
    assert len(result.steps) <= 4


def test_a_book_from_the_wire_is_checked_field_by_field() -> None:
    from reliability.shapes.arrival import check_book

    book = ArrivalBook(late_after_ms=10.0, max_delay_s=1.0)
    book.scheduled(0, 1.0, 1.001)
    assert book.take(0, 1.0, 1.002)
    good = book.payload()
    assert check_book(dict(good)) == good
    for key, bad, message in [("started", -1, "started: expected a count"), ("lag", {"a": 1}, "lag:"),
                              ("segments", [[0, 1]], "segments[0]"), ("dropped", True, "dropped")]:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_book({**good, key: bad})
    with pytest.raises(ValueError, match="not a mapping"):
        check_book([1, 2])
