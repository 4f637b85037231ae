"""JUnit XML: one testcase per SLA criterion and one per fault's graceful and recovery checks.

Built with ``xml.etree.ElementTree``, which escapes text and attribute values itself, so names and
messages from the target stay data. The SLA suite's failure count equals the number of failed
criteria (zero exactly when the verdict is met); an inconclusive verdict adds one ``<error>``
testcase so CI cannot read untrustworthy numbers as green.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from reliability.report.data import NA, Record, fmt_bool, fmt_criterion, fmt_s
from reliability.report.facts import faults
from reliability.report.views import criterion_interval, criterion_status
from reliability.schema import sections as s

# XML 1.0 cannot carry these characters at all, escaped or not
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _case(suite: ET.Element, classname: str, name: str, time_s: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name), time=f"{time_s:.3f}")


def _outcome(case: ET.Element, tag: str, message: str, detail: str = "") -> None:
    element = ET.SubElement(case, tag, message=_clean(message), type=tag)
    element.text = _clean(detail or message)


def _criterion_message(c: s.Criterion) -> str:
    actual = "no data" if c.actual is None else fmt_criterion(c.name, c.actual)
    interval = criterion_interval(c)
    ci = "" if interval == NA else f" ({interval})"
    return f"{c.name} = {actual}{ci}, needs {c.comparator} {fmt_criterion(c.name, c.threshold)}"


def _run_time(record: Record) -> tuple[float, str | None]:
    """The run's duration (s) and its start as JUnit's timestamp (ISO 8601, no zone: UTC)."""
    duration = record.run.duration_s or 0.0
    started = record.run.started_at
    stamp = None
    if started:
        stamp = started.rstrip("Z").split("+")[0]
        stamp = stamp.split(".")[0]  # Jenkins and most readers expect seconds
    return max(duration, 0.0), stamp


def _suite(root: ET.Element, name: str, record: Record) -> ET.Element:
    _duration, stamp = _run_time(record)
    attrs = {"name": _clean(name)}
    if stamp:
        attrs["timestamp"] = stamp
    return ET.SubElement(root, "testsuite", attrs)


def _load_properties(suite: ET.Element, load: s.Load) -> None:
    """The open-model load as suite properties (raw numbers, for CI to read or chart)."""
    values: list[tuple[str, object]] = [
        ("model", load.model), ("arrivals", load.arrivals), ("asked_rate_per_s", load.asked_rate_per_s),
        ("achieved_rate_per_s", load.achieved_rate_per_s), ("achieved_ratio", load.achieved_ratio),
        ("scheduled", load.scheduled), ("started", load.started), ("late", load.late), ("dropped", load.dropped),
        ("max_in_flight", load.max_in_flight), ("schedule_lag_p50_ms", load.schedule_lag_ms.p50),
        ("schedule_lag_p99_ms", load.schedule_lag_ms.p99)]
    properties = ET.SubElement(suite, "properties")
    for key, value in values:
        if value is not None:
            ET.SubElement(properties, "property", name=f"load.{key}", value=_clean(str(value)))


def _sla_suite(root: ET.Element, record: Record) -> None:
    sla = record.sla
    tier = sla.tier or "sla"
    suite = _suite(root, f"SLA {tier} ({sla.percentile or 'p95'})", record)
    if record.load is not None:
        _load_properties(suite, record.load)
    duration, _stamp = _run_time(record)
    suite.set("time", f"{duration:.3f}")  # every criterion is graded over the whole run
    for c in sla.criteria:
        case = _case(suite, f"sla.{tier}.{c.scope}", c.name, duration)
        status = criterion_status(c)
        if status == "fail":
            _outcome(case, "failure", _criterion_message(c))
        elif status == "inconclusive":  # neither met nor failed on the evidence: an error, not green
            _outcome(case, "error", "not enough evidence: " + _criterion_message(c))
    if sla.passed is False and all(criterion_status(c) == "pass" for c in sla.criteria):
        # a verdict that failed with no failed criterion (a writer we do not know): still one failure
        _outcome(_case(suite, f"sla.{tier}", "verdict", duration), "failure", "SLA not met")
    if sla.inconclusive:
        _outcome(_case(suite, f"sla.{tier}", "verdict is conclusive", duration), "error",
                 "inconclusive: " + "; ".join(sla.inconclusive))


def _fault_suite(root: ET.Element, record: Record) -> None:
    facts = faults(record)
    if not facts:
        return
    suite = _suite(root, "faults", record)
    for f in facts:
        held = (f.reverted_s - f.injected_s) if f.injected_s is not None and f.reverted_s is not None else 0.0
        graceful = _case(suite, f"fault.{f.name}", "graceful", max(held, 0.0))  # judged while it was applied
        if f.graceful is False:
            _outcome(graceful, "failure", f"{f.name}: not graceful (peak error ratio "
                     f"{fmt_criterion('error_ratio', f.peak_error_ratio)}, fail-fast: {fmt_bool(f.fail_fast)})")
        elif f.graceful is None:
            ET.SubElement(graceful, "skipped", message="graceful degradation was not measured")
        recovery = _case(suite, f"fault.{f.name}", "recovery", f.time_to_recover_s or 0.0)
        if f.recovered is False:
            _outcome(recovery, "failure", f"{f.name}: did not recover after the fault was reverted")
        elif f.verified_healthy is False:
            _outcome(recovery, "failure", f"{f.name}: recovered in {fmt_s(f.time_to_recover_s)} but the "
                     "post-revert health check failed")
        elif f.recovered is None:
            reason = "; ".join(f.problems) or "recovery was not measured"
            ET.SubElement(recovery, "skipped", message=_clean(reason))


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    if suite.get("time") is None:
        suite.set("time", f"{sum(float(c.get('time') or 0) for c in cases):.3f}")


def render_junit(record: Record) -> str:
    root = ET.Element("testsuites", name=_clean(f"reliability {record.run.scenario or ''}".strip()))
    _sla_suite(root, record)
    _fault_suite(root, record)
    for suite in root.findall("testsuite"):
        _count(suite)
    # <testsuites> takes no "skipped" (Jenkins' junit-10.xsd); its time is the run's
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key) or 0) for s in root.findall("testsuite"))))
    root.set("time", f"{_run_time(record)[0]:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
