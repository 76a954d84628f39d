"""Scenario files (SCENARIOS.md): load a YAML story about projects into typed steps.

The runner and the pytest plugin build on these names; nothing here runs the engine.
"""

from approvalflow.scenario.loader import (
    LOCAL_TIMEZONE,
    MAX_FILE_BYTES,
    find_scenario_files,
    is_scenario_file,
    load_actors,
    load_scenario,
    loads_scenario,
)
from approvalflow.scenario.model import (
    ActorSpec,
    AdvanceStep,
    CommandStep,
    Expectation,
    ExpectStep,
    RulesStep,
    Scenario,
    ScenarioFileError,
    Step,
)

__all__ = [
    "LOCAL_TIMEZONE",
    "MAX_FILE_BYTES",
    "ActorSpec",
    "AdvanceStep",
    "CommandStep",
    "ExpectStep",
    "Expectation",
    "RulesStep",
    "Scenario",
    "ScenarioFileError",
    "Step",
    "find_scenario_files",
    "is_scenario_file",
    "load_actors",
    "load_scenario",
    "loads_scenario",
]
