"""Every error the library raises is an ``ApprovalflowError`` with a stable code, and still the
built-in exception it resembles; the lists of codes are read off the classes."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from approvalflow import errors
from approvalflow.errors import (
    ERROR_CODES,
    SERVICE_ERROR_CODES,
    SETUP_ERROR_CODES,
    STORE_ERROR_CODES,
    ApprovalflowError,
    PluginError,
    ScenarioFileError,
    SchemaVersionError,
    SettingsError,
    SetupError,
    error_classes,
)
from approvalflow.plugins.manager import build_plugin_manager
from approvalflow.scenario.loader import loads_scenario
from approvalflow.settings import Settings
from approvalflow.stores.schema import upgrade_statements

SRC = Path(__file__).resolve().parents[1] / "src" / "approvalflow"
# Exceptions defined outside errors.py on purpose, besides private ones (``_Refused``, which the
# loader turns into a ScenarioFileError): the pytest plugin's failure report (pytest renders
# it, no caller ever catches it), and the SQL stores' signal of a taken unique key (turned into
# a ConcurrencyConflict before it leaves the store).
# The CLI's two signals end in main() as an exit status; no caller of the library meets them.
NOT_RAISED_TO_CALLERS = {"ScenarioFailed", "UniqueKeyTaken", "CommandLineError", "CommandFailed"}
# WORKFLOW.md, "Error codes (stable)".
CONTRACT_CODES = (
    "NotAuthorized",
    "InvalidTransition",
    "UnknownProject",
    "DuplicateProject",
    "InvalidCommand",
    "KeyMaterialMissing",
    "UnknownMaterial",
    "AlreadyVoted",
    "ConcurrencyConflict",
    "CalendarUnknown",
)


class TestTheClasses:
    def test_the_command_codes_are_the_contract(self) -> None:
        """What a refused command can answer is WORKFLOW.md's list, in its order."""
        assert ERROR_CODES[: len(CONTRACT_CODES)] == CONTRACT_CODES

    def test_setup_errors_are_listed_apart(self) -> None:
        """Settings, plugin, scenario-file and schema errors are setup errors, with codes."""
        assert {
            "SettingsError",
            "PluginError",
            "ScenarioFileError",
            "SchemaVersionError",
            "WorkflowDefinitionError",
        } <= set(SETUP_ERROR_CODES)
        assert not set(SETUP_ERROR_CODES) & set(ERROR_CODES)

    def test_every_code_is_its_own_and_unique(self) -> None:
        """Each listed class defines its code (none inherited), and no two share one."""
        codes = [cls.code for cls in error_classes()]
        assert len(codes) == len(set(codes))
        assert all("code" in cls.__dict__ for cls in error_classes())
        assert sorted(codes) == sorted(
            (*ERROR_CODES, *SETUP_ERROR_CODES, *STORE_ERROR_CODES, *SERVICE_ERROR_CODES)
        )

    def test_each_keeps_the_built_in_it_resembles(self) -> None:
        """Code written against the built-ins keeps catching them."""
        assert issubclass(SettingsError, ValueError)
        assert issubclass(PluginError, RuntimeError)
        assert issubclass(ScenarioFileError, ValueError)
        assert issubclass(SchemaVersionError, ValueError)
        assert issubclass(errors.NotAuthorized, PermissionError)
        assert all(issubclass(getattr(errors, code), SetupError) for code in SETUP_ERROR_CODES)

    def test_the_old_import_paths_still_work(self) -> None:
        """The classes moved to errors.py; their modules still export them."""
        import approvalflow.settings
        from approvalflow.plugins import manager
        from approvalflow.scenario import model
        from approvalflow.stores import schema

        assert approvalflow.settings.SettingsError is SettingsError
        assert manager.PluginError is PluginError
        assert model.ScenarioFileError is ScenarioFileError
        assert schema.SchemaVersionError is SchemaVersionError

    def test_a_new_class_is_listed_by_being_defined(self) -> None:
        """Every class of errors.py is listed, which needs its own code: no list is kept by hand."""
        source = (SRC / "errors.py").read_text(encoding="utf-8")
        defined = [
            node.name
            for node in ast.parse(source).body
            if isinstance(node, ast.ClassDef)
            and node.name not in ("ApprovalflowError", "SetupError", "ServiceError")
        ]
        assert sorted(defined) == sorted(cls.__name__ for cls in error_classes())

    def test_no_exception_class_is_defined_elsewhere(self) -> None:
        """A library error outside errors.py would be missing from the lists."""
        elsewhere = []
        for path in sorted(SRC.rglob("*.py")):
            if path.name == "errors.py" and path.parent == SRC:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.ClassDef)
                    and any(
                        (isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception")))
                        or (isinstance(base, ast.Attribute) and base.attr.endswith("Error"))
                        for base in node.bases
                    )
                    and not node.name.startswith("_")
                    and node.name not in NOT_RAISED_TO_CALLERS
                ):
                    elsewhere.append(f"{path.relative_to(SRC)}: {node.name}")
        assert elsewhere == []


class TestRaisedAsLibraryErrors:
    def test_bad_settings(self) -> None:
        """A bad setting is caught as an ApprovalflowError, code SettingsError, naming the key."""
        with pytest.raises(ApprovalflowError) as caught:
            Settings.from_dict({"supply_deadline_wd": "soon"})
        assert caught.value.code == "SettingsError"
        assert "supply_deadline_wd" in str(caught.value)

    def test_an_unknown_plugin(self) -> None:
        """A plugin name that is not installed."""
        with pytest.raises(ApprovalflowError) as caught:
            build_plugin_manager(["no_such_county"])
        assert caught.value.code == "PluginError"
        assert "no_such_county" in str(caught.value)

    def test_a_bad_scenario_file(self) -> None:
        """The loader's error keeps its path:line: key: message form, and pickles whole."""
        with pytest.raises(ApprovalflowError) as caught:
            loads_scenario(
                "scenario: x\nsteps: 3\n", "bad.yaml", known_commands=(), known_error_codes=()
            )
        error = caught.value
        assert isinstance(error, ScenarioFileError) and error.code == "ScenarioFileError"
        assert str(error).startswith("bad.yaml:")
        again = pickle.loads(pickle.dumps(error))
        assert (again.path, again.line, again.key, again.message) == (
            error.path,
            error.line,
            error.key,
            error.message,
        )

    def test_a_schema_newer_than_the_code(self) -> None:
        """A database from a newer approvalflow."""
        with pytest.raises(ApprovalflowError) as caught:
            upgrade_statements(99, "sqlite", current=4)
        assert caught.value.code == "SchemaVersionError"
        assert "99" in str(caught.value)
