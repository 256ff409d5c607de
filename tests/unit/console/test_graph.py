"""An execution's graph from the ASL definition, and each state's status from the history."""

from __future__ import annotations

import json
from pathlib import Path

from console.graph import END, START, execution_graph, graph_of, state_runs
from tests.unit.console.fakes import DEFINITION, FAILED_EVENTS, SUCCEEDED_EVENTS, event

LIFECYCLE_ASL = Path(__file__).resolve().parents[3] / "state_machines" / "model-lifecycle.asl.json"


def test_the_lifecycle_definition_gives_every_state_and_transition() -> None:
    definition = json.loads(LIFECYCLE_ASL.read_text())
    graph = graph_of(definition)
    assert set(graph.states()) == set(definition["States"])
    edges = {(e.source, e.target, e.kind) for e in graph.edges}
    assert (START, "CheckRequest", "start") in edges
    assert ("CheckRequest", "RejectRequest", "default") in edges
    assert ("CheckRequest", "Train", "choice") in edges
    assert ("Train", "TrainingFailed", "catch") in edges
    assert ("SmokeTest", "Rollback", "catch") in edges
    assert ("Promoted", END, "end") in edges and ("RejectRequest", END, "end") in edges


def test_nested_states_of_a_map_belong_to_it() -> None:
    graph = graph_of(
        {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "End": True,
                    "ItemProcessor": {
                        "StartAt": "One",
                        "States": {"One": {"Type": "Pass", "End": True}},
                    },
                }
            },
        }
    )
    assert {n.id: n.parent for n in graph.nodes}["One"] == "Each"
    assert not any(e.source == "One" and e.target == END for e in graph.edges)


def test_a_succeeded_execution_marks_its_path_and_leaves_the_rest_not_run() -> None:
    view = execution_graph(DEFINITION, SUCCEEDED_EVENTS)
    assert view.statuses() == {
        "Check": "succeeded",
        "Work": "succeeded",
        "Done": "succeeded",
        "WorkFailed": "not-run",
        "Reject": "not-run",
    }
    work = next(n for n in view.nodes if n.id == "Work")
    assert work.duration_ms == 2000.0 and work.output == '{"result": 1}'
    assert work.input == '{"ok": true}' and work.visits == 1


def test_a_fail_state_takes_the_executions_error() -> None:
    runs = state_runs(FAILED_EVENTS)
    assert runs["Reject"].status == "failed"
    assert (runs["Reject"].error, runs["Reject"].cause) == ("Rejected", "bad request")
    assert runs["Check"].status == "succeeded"


def test_a_caught_failure_is_caught_and_the_machine_goes_on() -> None:
    events = [
        event(1, "ExecutionStarted", 0),
        event(2, "TaskStateEntered", 0.1, name="Work", input="{}"),
        event(3, "TaskFailed", 0.5, error="Boom", cause="it broke"),
        event(4, "FailStateEntered", 0.6, name="WorkFailed", input="{}"),
        event(5, "ExecutionFailed", 0.7, error="WorkFailed", cause="work broke"),
    ]
    runs = state_runs(events)
    assert runs["Work"].status == "caught" and runs["Work"].error == "Boom"
    assert runs["Work"].duration_ms == 500.0
    assert runs["WorkFailed"].status == "failed" and runs["WorkFailed"].error == "WorkFailed"


def test_an_uncaught_task_failure_fails_that_state_with_its_own_error() -> None:
    events = [
        event(1, "TaskStateEntered", 0.1, name="Work", input="{}"),
        event(2, "TaskFailed", 0.5, error="Boom", cause="it broke"),
        event(3, "ExecutionFailed", 0.6, error="Boom", cause="it broke"),
    ]
    assert state_runs(events)["Work"].status == "failed"
    assert state_runs(events)["Work"].error == "Boom"


def test_a_running_state_and_an_aborted_one() -> None:
    entered = [event(1, "TaskStateEntered", 0.1, name="Work", input="{}")]
    assert state_runs(entered)["Work"].status == "running"
    assert state_runs(entered)["Work"].duration_ms is None
    aborted = [*entered, event(2, "ExecutionAborted", 1.0)]
    assert state_runs(aborted)["Work"].status == "aborted"


def test_a_state_visited_twice_counts_its_visits() -> None:
    events = [
        event(1, "TaskStateEntered", 0, name="Work"),
        event(2, "TaskStateExited", 1, name="Work", output="1"),
        event(3, "TaskStateEntered", 2, name="Work"),
        event(4, "TaskStateExited", 4, name="Work", output="2"),
    ]
    run = state_runs(events)["Work"]
    assert (run.visits, run.output, run.duration_ms) == (2, "2", 2000.0)


def test_a_state_no_longer_in_the_definition_is_still_shown() -> None:
    events = [
        event(1, "TaskStateEntered", 0, name="Gone"),
        event(2, "TaskStateExited", 1, name="Gone"),
    ]
    assert execution_graph(DEFINITION, events).statuses()["Gone"] == "succeeded"
