"""The ACI log follower, run inside the Azure provider's own monitor loop (`_monitor_logging`) with
a hook that replays what ACI answers poll by poll: the loop, the state handling and the printing
are the provider's; only Azure is scripted."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from include.blueprint.modes._aci_logs import follow_whole_log, unseen_lines

# dbt's output for a failing model, as a container prints it: blank "HH:MM:SS  " separators repeat
# within the second, and the error text only comes in the summary.
RUNNING_TAIL = [
    "00:45:18  Concurrency: 4 threads (target='dev')\n",
    "00:45:18  \n",
]
TERMINATED_TAIL = [
    *RUNNING_TAIL,
    "00:45:18  1 of 1 ERROR creating sql view model e2e.stg_orders ........ [ERROR in 0.06s]\n",
    "00:45:18  \n",
    "00:45:18    Database Error in model stg_orders (models/staging/stg_orders.sql)\n",
    '  relation "e2e.raw_orders" does not exist\n',
    "00:45:18  \n",
    "00:45:18  Done. PASS=0 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=1\n",
]


class ScriptedHook:
    """Answers get_state/get_logs from a list of (state, exit code, log tail), one per poll."""

    def __init__(self, polls: list[tuple[str, int | None, list[str]]]) -> None:
        self.polls, self.index = polls, -1

    def get_state(self, resource_group: str, name: str) -> SimpleNamespace:
        self.index = min(self.index + 1, len(self.polls) - 1)
        state, exit_code, _ = self.polls[self.index]
        current = SimpleNamespace(state=state, exit_code=exit_code, detail_status="Error" if exit_code else "")
        view = SimpleNamespace(current_state=current, events=[SimpleNamespace(message="Started container")])
        return SimpleNamespace(containers=[SimpleNamespace(instance_view=view)], provisioning_state="Succeeded")

    def get_logs(self, resource_group: str, name: str, tail: int = 1000) -> list[str]:
        return list(self.polls[self.index][2])[-tail:]


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def _record(self, message: str, *args: object, **kwargs: object) -> None:
        self.lines.append(message % args if args else message)

    info = warning = error = exception = _record


def monitored_lines(polls: list[tuple[str, int | None, list[str]]], follow: bool, monkeypatch) -> list[str]:
    from airflow.providers.microsoft.azure.operators.container_instances import AzureContainerInstancesOperator

    operator = AzureContainerInstancesOperator(
        task_id="stg_orders", ci_conn_id="azure", registry_conn_id=None, resource_group="rg",
        name="group", image="dbt-runtime:1", region="westeurope",
    )  # fmt: skip
    operator.__dict__["hook"] = ScriptedHook(polls)  # the cached_property's slot
    operator._cached_logger = logger = RecordingLogger()  # what the operator's `log` property returns
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    if follow:
        follow_whole_log(operator)
    assert operator._monitor_logging("rg", "group") == polls[-1][1]
    return logger.lines


FAILING_RUN = [("Running", None, RUNNING_TAIL), ("Terminated", 1, TERMINATED_TAIL)]


def test_the_provider_alone_drops_lines_after_a_repeated_one(monkeypatch) -> None:
    """Why the follower exists: if this starts failing, the provider has fixed its `_log_last`."""
    lines = monitored_lines(FAILING_RUN, follow=False, monkeypatch=monkeypatch)
    assert not any("does not exist" in line for line in lines)


def test_every_line_reaches_the_task_log_once(monkeypatch) -> None:
    lines = monitored_lines(FAILING_RUN, follow=True, monkeypatch=monkeypatch)
    container_lines = [line for line in lines if line.startswith(("00:45", "  relation"))]
    assert container_lines == [line.rstrip() for line in TERMINATED_TAIL]
    assert lines.count("Started container") == 1  # the events go through the follower too


def test_a_tail_that_slides_past_the_start_prints_only_new_lines(monkeypatch) -> None:
    log = [f"00:00:{i % 60:02d}  \n" if i % 3 else f"line {i}\n" for i in range(1500)]
    tails = [log[:900], log[400:1400], log[500:]]  # ACI answers the last 1,000 lines
    polls = [("Running", None, tails[0]), ("Running", None, tails[1]), ("Terminated", 0, tails[2])]
    lines = monitored_lines(polls, follow=True, monkeypatch=monkeypatch)
    assert [line for line in lines if line.startswith(("00:", "line "))] == [line.rstrip() for line in log]


@pytest.mark.parametrize(
    ("previous", "current", "unseen"),
    [  # lines as ACI's log API splits them: each ends in a newline, except one still being written
        ("", "a b", "a b"),
        ("a b", "a b", ""),
        ("a b", "a b b c", "b c"),
        ("x a b", "a b c", "c"),  # the tail moved on by one line
        ("a b", "c d", "c d"),  # no overlap: more than a tail arrived between polls
        ("a b", "", ""),
        ("a b c", "a b", ""),  # a shorter answer than before repeats nothing
        ("a b-", "a bc d", "bc d"),  # "b" was half written ("-": no newline yet): printed again, whole
    ],
)
def test_unseen_lines(previous: str, current: str, unseen: str) -> None:
    def lines(text: str) -> list[str]:
        return [word.removesuffix("-") if word.endswith("-") else f"{word}\n" for word in text.split()]

    assert unseen_lines(lines(previous), lines(current)) == lines(unseen)


def test_an_operator_without_log_last_is_refused() -> None:
    with pytest.raises(TypeError, match="log follower needs updating"):
        follow_whole_log(SimpleNamespace(log=logging.getLogger("x")))


def test_a_shorter_answer_keeps_what_was_printed(monkeypatch) -> None:
    full = [f"line {i}\n" for i in range(4)]
    polls = [("Running", None, full), ("Running", None, full[:2]), ("Terminated", 0, [*full, "done\n"])]
    lines = monitored_lines(polls, follow=True, monkeypatch=monkeypatch)
    assert [line for line in lines if line.startswith(("line", "done"))] == [*(text.rstrip() for text in full), "done"]
