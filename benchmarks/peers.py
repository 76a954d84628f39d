"""The PA-5 workload on peer libraries, for ratios against approvalflow in the same run.

In the peers' terms PA-5 is the process of ``pa5.bpmn``: "apply", "review", five department
approvals in parallel, then "decide": eight actions (user tasks completed, or triggers fired)
per instance. Every variant asserts that each instance really reached its end.

- SpiffWorkflow (optional, the ``bench`` extra): the BPMN file, parsed once; each instance is
  a ``BpmnWorkflow`` driven by completing its ready user tasks; a second variant serialises the
  workflow to JSON after each action (what a durable host has to do).
- transitions (a dependency of approvalflow): a flat machine (apply, review, five approvals
  counted through states ``approval_0``..``approval_5``, decide) built once per instance, the
  same machine shared by every instance (models attached), and a ``HierarchicalMachine`` with a
  parallel state of five department regions (pending -> approved), left by "decide" when all
  are approved.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

DEPARTMENTS = ("fgw", "zrzy", "zj", "sthj", "yj")
ACTIONS = 8  # apply, review, 5 approvals, decide
BPMN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pa5.bpmn")

logging.getLogger("transitions").setLevel(logging.WARNING)


# -- SpiffWorkflow ---------------------------------------------------------------------------


def spiff_available() -> str | None:
    """None if SpiffWorkflow can be used, else why not ("not installed")."""
    try:
        import SpiffWorkflow  # noqa: F401
    except ImportError:
        return "not installed"
    return None


class SpiffPA5:
    def __init__(self) -> None:
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState

        logging.getLogger("spiff").setLevel(logging.WARNING)
        parser = BpmnParser()
        parser.add_bpmn_file(BPMN)
        self.spec = parser.get_spec("pa5")
        self.workflow_class = BpmnWorkflow
        self.ready = TaskState.READY
        self.serializer = BpmnWorkflowSerializer()
        self.last_json_bytes = 0

    def instance(self, serialize: bool) -> bool:
        workflow = self.workflow_class(self.spec)
        workflow.do_engine_steps()
        actions = 0
        while True:
            ready = workflow.get_tasks(state=self.ready, manual=True)
            if not ready:
                break
            ready[0].run()
            workflow.do_engine_steps()
            actions += 1
            if serialize:
                self.last_json_bytes = len(self.serializer.serialize_json(workflow))
        return workflow.is_completed() and actions == ACTIONS


def spiff(n: int, serialize: bool) -> dict[str, Any]:
    runner = SpiffPA5()
    runner.instance(serialize)  # warm-up
    finished = 0
    start = time.perf_counter()
    for _ in range(n):
        finished += runner.instance(serialize)
    elapsed = time.perf_counter() - start
    result = {
        "instances": n,
        "finished": finished,
        "seconds": elapsed,
        "inst_per_s": n / elapsed,
        "actions_per_s": n * ACTIONS / elapsed,
    }
    if serialize:
        result["json_bytes"] = runner.last_json_bytes
    return result


# -- transitions -----------------------------------------------------------------------------

FLAT_STATES = ["new", "applied", *(f"approval_{i}" for i in range(6)), "decided"]
FLAT_TRANSITIONS = [
    {"trigger": "apply", "source": "new", "dest": "applied"},
    {"trigger": "review", "source": "applied", "dest": "approval_0"},
    *(
        {"trigger": "approve", "source": f"approval_{i}", "dest": f"approval_{i + 1}"}
        for i in range(5)
    ),
    {"trigger": "decide", "source": "approval_5", "dest": "decided"},
]


class _Model:
    pass


def _flat_machine(model: Any) -> Any:
    from transitions import Machine

    return Machine(
        model=model,
        states=FLAT_STATES,
        transitions=FLAT_TRANSITIONS,
        initial="new",
        auto_transitions=False,
    )


def _drive_flat(model: Any) -> bool:
    model.apply()
    model.review()
    for _ in DEPARTMENTS:
        model.approve()
    model.decide()
    return bool(model.state == "decided")


def transitions_per_instance(n: int) -> dict[str, Any]:
    """A new flat Machine per instance (the model is the machine's)."""

    def one() -> bool:
        model = _Model()
        _flat_machine(model)
        return _drive_flat(model)

    return _timed(n, one)


def transitions_shared(n: int) -> dict[str, Any]:
    """One flat Machine; each instance is a model attached to it (and detached at the end)."""
    machine = _flat_machine(None)

    def one() -> bool:
        model = _Model()
        machine.add_model(model, initial="new")
        ok = _drive_flat(model)
        machine.remove_model(model)
        return ok

    return _timed(n, one)


def transitions_bare_trigger(models: int, rounds: int) -> dict[str, Any]:
    """The bare cost of one trigger on the shared Machine: ``models`` models attached up
    front, only the eight triggers timed (``rounds`` passes, median)."""
    import statistics

    machine = _flat_machine(None)
    samples = []
    finished = 0
    for _ in range(rounds):
        batch = [_Model() for _ in range(models)]
        for model in batch:
            machine.add_model(model, initial="new")
        start = time.perf_counter()
        for model in batch:
            model.apply()
            model.review()
            model.approve()
            model.approve()
            model.approve()
            model.approve()
            model.approve()
            model.decide()
        elapsed = time.perf_counter() - start
        samples.append(elapsed / (models * ACTIONS) * 1e6)
        finished += sum(model.state == "decided" for model in batch)
        for model in batch:
            machine.remove_model(model)
    return {
        "instances": models * rounds,
        "finished": finished,
        "trigger_us": statistics.median(samples),
        "samples_us": samples,
    }


def _hsm() -> Any:
    from transitions.extensions.nesting import HierarchicalMachine

    states = [
        "new",
        "applied",
        {
            "name": "approval",
            "parallel": [
                {"name": dept, "children": ["pending", "approved"], "initial": "pending"}
                for dept in DEPARTMENTS
            ],
        },
        "decided",
    ]
    transitions = [
        {"trigger": "apply", "source": "new", "dest": "applied"},
        {"trigger": "review", "source": "applied", "dest": "approval"},
        *(
            {
                "trigger": f"approve_{dept}",
                "source": f"approval_{dept}_pending",
                "dest": f"approval_{dept}_approved",
            }
            for dept in DEPARTMENTS
        ),
        {
            "trigger": "decide",
            "source": "approval",
            "dest": "decided",
            "conditions": "all_approved",
        },
    ]
    return HierarchicalMachine(
        model=None, states=states, transitions=transitions, initial="new", auto_transitions=False
    )


class _HSMModel:
    state: Any

    def all_approved(self) -> bool:
        return isinstance(self.state, list) and all(
            str(region).endswith("_approved") for region in self.state
        )


def transitions_hsm(n: int) -> dict[str, Any]:
    """One shared HierarchicalMachine with a parallel state; models attached per instance."""
    machine = _hsm()

    def one() -> bool:
        model = _HSMModel()
        machine.add_model(model, initial="new")
        model.apply()
        model.review()
        for dept in DEPARTMENTS:
            getattr(model, f"approve_{dept}")()
        model.decide()
        ok = model.state == "decided"
        machine.remove_model(model)
        return bool(ok)

    return _timed(n, one)


def _timed(n: int, one: Any) -> dict[str, Any]:
    assert one()  # warm-up
    finished = 0
    start = time.perf_counter()
    for _ in range(n):
        finished += one()
    elapsed = time.perf_counter() - start
    return {
        "instances": n,
        "finished": finished,
        "seconds": elapsed,
        "inst_per_s": n / elapsed,
        "actions_per_s": n * ACTIONS / elapsed,
        "trigger_us": elapsed / (n * ACTIONS) * 1e6,
    }
