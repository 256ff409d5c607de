"""An execution as a graph: the states and transitions of the state machine's own definition
(ASL), each state with what its execution history says happened to it.

Why from the definition and the history, not a drawing: the picture must be the machine that
ran, so a state added to ``model-lifecycle.asl.json`` appears without touching the console, and
each colour is a fact of ``GetExecutionHistory``. Pure: no AWS here; :mod:`console.lifecycle`
fetches the two documents.

Statuses, as the Step Functions console names them: ``succeeded``, ``failed``, ``caught`` (a
failure a ``Catch`` handled, after which the machine went on), ``running``, ``aborted`` and
``not-run``.

Example::

    graph = graph_of(definition)            # nodes and edges, Start and End included
    runs = state_runs(history_events)       # name -> StateRun
    view = execution_graph(definition, history_events)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "END",
    "START",
    "Edge",
    "ExecutionGraph",
    "Graph",
    "Node",
    "StateRun",
    "StateStatus",
    "execution_graph",
    "graph_of",
    "state_runs",
]

START = "__start__"
END = "__end__"
StateStatus = Literal["succeeded", "failed", "caught", "running", "aborted", "not-run"]
EdgeKind = Literal["next", "choice", "default", "catch", "start", "end"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Node(_Frozen):
    id: str
    type: str
    """The ASL type (Task, Choice, ...), or ``Start`` / ``End`` for the two markers."""
    parent: str | None = None
    """The Map or Parallel state a nested state belongs to."""
    comment: str | None = None


class Edge(_Frozen):
    source: str
    target: str
    kind: EdgeKind
    label: str | None = None


class Graph(_Frozen):
    nodes: list[Node]
    edges: list[Edge]

    def states(self) -> list[str]:
        """The states' names (the Start and End markers left out)."""
        return [n.id for n in self.nodes if n.id not in (START, END)]


def _nested(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The sub-machines of a Map (ItemProcessor or Iterator) or Parallel (Branches) state."""
    if state.get("Type") == "Map":
        inner = state.get("ItemProcessor") or state.get("Iterator")
        return [inner] if inner else []
    if state.get("Type") == "Parallel":
        return list(state.get("Branches") or [])
    return []


def _transitions(name: str, state: Mapping[str, Any]) -> Iterable[Edge]:
    for i, rule in enumerate(state.get("Choices") or []):
        if rule.get("Next"):
            yield Edge(source=name, target=rule["Next"], kind="choice", label=f"rule {i + 1}")
    if state.get("Default"):
        yield Edge(source=name, target=state["Default"], kind="default", label="default")
    if state.get("Next"):
        yield Edge(source=name, target=state["Next"], kind="next")
    for catcher in state.get("Catch") or []:
        if catcher.get("Next"):
            errors = ", ".join(catcher.get("ErrorEquals") or [])
            yield Edge(source=name, target=catcher["Next"], kind="catch", label=f"catch {errors}")


def graph_of(definition: Mapping[str, Any]) -> Graph:
    """Nodes and edges of an ASL definition, with a Start marker before ``StartAt`` and an End
    marker after every state that ends the machine (``End: true``, Succeed, Fail).

    Nested states (Map, Parallel) are nodes with ``parent`` set; their own start and end are
    edges inside the parent, not extra markers.

    Example: ``graph_of({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})``
    has nodes Start, A, End and edges Start→A, A→End.
    """
    nodes = [Node(id=START, type="Start")]
    edges = [Edge(source=START, target=definition["StartAt"], kind="start")]

    def walk(machine: Mapping[str, Any], parent: str | None) -> None:
        for name, state in (machine.get("States") or {}).items():
            nodes.append(
                Node(
                    id=name,
                    type=str(state.get("Type")),
                    parent=parent,
                    comment=state.get("Comment"),
                )
            )
            edges.extend(_transitions(name, state))
            ends = state.get("End") or state.get("Type") in ("Succeed", "Fail")
            if ends and parent is None:
                edges.append(Edge(source=name, target=END, kind="end"))
            for inner in _nested(state):
                walk(inner, name)

    walk(definition, None)
    nodes.append(Node(id=END, type="End"))
    return Graph(nodes=nodes, edges=edges)


class StateRun(_Frozen):
    """What the history says about one state (its last visit, and how many there were)."""

    name: str
    status: StateStatus
    visits: int = 0
    entered: datetime | None = None
    exited: datetime | None = None
    input: str | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.entered is None or self.exited is None:
            return None
        return (self.exited - self.entered).total_seconds() * 1000


_END_OF_EXECUTION: Mapping[str, StateStatus] = {
    "ExecutionSucceeded": "succeeded",
    "ExecutionFailed": "failed",
    "ExecutionTimedOut": "failed",
    "ExecutionAborted": "aborted",
}


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's ``...EventDetails`` (each event type names its own)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _is_failure(kind: str) -> bool:
    return not kind.startswith("Execution") and (
        kind.endswith("Failed") or kind.endswith("TimedOut")
    )


def state_runs(events: Sequence[Mapping[str, Any]]) -> dict[str, StateRun]:
    """Each visited state's status, timing, input, output and error, from
    ``GetExecutionHistory``'s events in order.

    A state is ``running`` from its ``...StateEntered`` event, ``succeeded`` at its
    ``...StateExited`` event, ``caught`` if a failure happened in it and the machine went on,
    and takes the execution's end (``failed``, ``aborted``) if the execution ended in it.
    """
    runs: dict[str, dict[str, Any]] = {}
    open_states: list[str] = []

    def close(name: str, status: StateStatus, at: datetime | None) -> None:
        run = runs[name]
        run["status"] = status
        run["exited"] = run.get("exited") or at
        if name in open_states:
            open_states.remove(name)

    for event in events:
        kind = str(event.get("type", ""))
        at = event.get("timestamp")
        details = _details(event)
        if kind.endswith("StateEntered"):
            name = details.get("name", "")
            # A state in which a failure was caught is left when the next one is entered.
            for caught in [n for n in open_states if runs[n].get("error")]:
                close(caught, "caught", at)
            previous = runs.get(name, {})
            runs[name] = {
                "name": name,
                "status": "running",
                "visits": int(previous.get("visits", 0)) + 1,
                "entered": at,
                "exited": None,
                "input": details.get("input"),
            }
            open_states.append(name)
        elif kind.endswith("StateExited"):
            name = details.get("name", "")
            if name in runs:
                runs[name]["output"] = details.get("output")
                close(name, "caught" if runs[name].get("error") else "succeeded", at)
        elif _is_failure(kind) and open_states:
            innermost = runs[open_states[-1]]
            innermost["error"] = details.get("error")
            innermost["cause"] = details.get("cause")
        elif kind in _END_OF_EXECUTION:
            status = _END_OF_EXECUTION[kind]
            for name in list(open_states):
                run = runs[name]
                if status != "succeeded" and not run.get("error"):
                    run["error"], run["cause"] = details.get("error"), details.get("cause")
                close(name, status, at)
    return {name: StateRun(**run) for name, run in runs.items()}


class GraphNode(_Frozen):
    """A node as the page draws it: its place in the machine and what happened to it."""

    id: str
    type: str
    parent: str | None
    comment: str | None
    status: StateStatus | Literal["marker"]
    visits: int
    entered: str | None
    duration_ms: float | None
    input: str | None
    output: str | None
    error: str | None
    cause: str | None


class ExecutionGraph(_Frozen):
    nodes: list[GraphNode]
    edges: list[Edge]

    def statuses(self) -> dict[str, str]:
        """State name → status (markers left out): what the page must show."""
        return {n.id: n.status for n in self.nodes if n.status != "marker"}


def execution_graph(
    definition: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> ExecutionGraph:
    """The definition's graph with every state's run; states never entered are ``not-run``.

    A state in the history but not in the definition (a definition updated since) is still
    shown, without edges, so the page never hides what ran.
    """
    graph = graph_of(definition)
    runs = state_runs(events)
    known = {n.id for n in graph.nodes}
    nodes = list(graph.nodes) + [
        Node(id=name, type="(not in the current definition)") for name in runs if name not in known
    ]
    out = []
    for node in nodes:
        run = runs.get(node.id)
        marker = node.id in (START, END)
        out.append(
            GraphNode(
                id=node.id,
                type=node.type,
                parent=node.parent,
                comment=node.comment,
                status="marker" if marker else (run.status if run else "not-run"),
                visits=run.visits if run else 0,
                entered=run.entered.isoformat() if run and run.entered else None,
                duration_ms=run.duration_ms if run else None,
                input=run.input if run else None,
                output=run.output if run else None,
                error=run.error if run else None,
                cause=run.cause if run else None,
            )
        )
    return ExecutionGraph(nodes=out, edges=graph.edges)
