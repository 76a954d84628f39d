"""The CLI as an operator meets it on a bad day: every wrong input is one line on stderr with
exit 2, every failure exit 1, never a traceback; reading a store never creates it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from test_cli import SCENARIO

from approvalflow.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], status: int) -> tuple[str, str]:
    """Run ``approvalflow argv``; check the exit status and that no traceback was printed."""
    capsys.readouterr()
    assert main(argv) == status
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return out, err


@pytest.fixture
def filled(tmp_path: Path) -> str:
    (tmp_path / "story.yaml").write_text(SCENARIO, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'county.db'}"
    assert main(["scenario", "run", str(tmp_path / "story.yaml"), "--store", url]) == 0
    return url


READING_COMMANDS = [
    ["show"],
    ["show", "P1"],
    ["audit", "verify"],
    ["report", "metrics"],
    ["report", "late"],
    ["report", "leaderboard", "--month", "2026-03"],
    ["worker", "--once"],
]


class TestUsageErrors:
    @pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
    @pytest.mark.parametrize(
        "url,said",
        [
            ("nosuch://x", "unknown store URL"),
            ("sqlite://relative.db", "three slashes"),
            ("sqlite:x.db", "not an SQLite URL"),
        ],
    )
    def test_an_unknown_or_malformed_store_url(
        self, command: list[str], url: str, said: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every reading command: a usage error naming what is wrong with the URL."""
        _, err = run_cli([*command, "--store", url], capsys, 2)
        assert said in err and err.startswith("approvalflow: ")

    @pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
    def test_a_store_that_does_not_exist_is_not_created(
        self, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`show --store sqlite:///typo.db` used to create typo.db and answer "no projects"."""
        typo = tmp_path / "typo.db"
        _, err = run_cli([*command, "--store", f"sqlite:///{typo}"], capsys, 2)
        assert "no approvalflow store at the SQLite file" in err and "store init" in err
        assert not typo.exists()

    def test_an_empty_file_is_not_a_store(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file without the store's tables is refused, not turned into a store."""
        (tmp_path / "notes.db").write_bytes(b"")
        _, err = run_cli(
            ["audit", "verify", "--store", f"sqlite:///{tmp_path}/notes.db"], capsys, 2
        )
        assert "no approvalflow store in the SQLite file" in err

    def test_no_store_given_and_none_in_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The message says both ways to name a store."""
        monkeypatch.delenv("APPROVALFLOW_STORE", raising=False)
        _, err = run_cli(["show"], capsys, 2)
        assert "pass --store URL or set APPROVALFLOW_STORE" in err

    def test_the_environment_names_the_store(
        self, filled: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """APPROVALFLOW_STORE stands in for --store."""
        monkeypatch.setenv("APPROVALFLOW_STORE", filled)
        out, _ = run_cli(["show"], capsys, 0)
        assert "-P1  华晋磁材年产千吨磁材" in out

    @pytest.mark.parametrize(
        "argv",
        [
            ["show", "--at", "tomorrow"],
            ["report", "late", "--at", "2026-02-30"],
            ["report", "leaderboard", "--month", "2026-3"],
            ["report", "leaderboard", "--month", "2026-13"],
        ],
        ids=" ".join,
    )
    def test_times_and_months_are_refused_not_guessed(
        self, argv: list[str], filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`--month 2026-3` answered "(no rows)" with exit 0."""
        out, err = run_cli([*argv, "--store", filled], capsys, 2)
        assert out == "" and ("--at" in err or "--month takes YYYY-MM" in err)

    def test_a_missing_actors_file(
        self, filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A usage error naming the option, not a traceback."""
        argv = ["worker", "--once", "--store", filled, "--actors", str(tmp_path / "none.yaml")]
        _, err = run_cli(argv, capsys, 2)
        assert "--actors:" in err and "cannot read the file" in err

    def test_a_malformed_actors_file_names_the_line(
        self, filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The scenario loader's message: file, line, key and a suggestion."""
        actors = tmp_path / "actors.yaml"
        actors.write_text("li: {roles: [officer]}\nwang: {rolez: [officer]}\n", encoding="utf-8")
        argv = ["worker", "--once", "--store", filled, "--actors", str(actors)]
        _, err = run_cli(argv, capsys, 2)
        assert f"{actors}:2: $.wang.rolez: unknown key (did you mean 'roles'?)" in err

    def test_unknown_options_and_commands(self, capsys: pytest.CaptureFixture[str]) -> None:
        """argparse's own errors exit 2 on stderr too."""
        _, err = run_cli(["shw"], capsys, 2)
        assert "invalid choice: 'shw'" in err
        _, err = run_cli(["show", "--stoer", "x"], capsys, 2)
        assert "unrecognized arguments" in err
        run_cli([], capsys, 2)
        _, err = run_cli(["diagram", "nosuch"], capsys, 2)
        assert "unknown workflow 'nosuch'" in err

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the installed version."""
        from importlib.metadata import version

        out, _ = run_cli(["--version"], capsys, 0)
        assert out.strip() == f"approvalflow {version('approvalflow')}"


class TestFailures:
    def test_an_unreachable_postgresql_is_a_failure_not_a_traceback(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # Port 1 on the loopback refuses at once.
        """A store that cannot be reached is a failure (1), said in one line."""
        _, err = run_cli(["show", "--store", "postgresql://postgres@127.0.0.1:1/test"], capsys, 1)
        assert err.startswith("approvalflow: StoreUnavailable: cannot connect to PostgreSQL")

    def test_an_unknown_project(self, filled: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Exit 1, the reason on stderr, nothing on stdout."""
        out, err = run_cli(["show", "NOPE", "--store", filled], capsys, 1)
        assert out == "" and "no project 'NOPE'" in err

    def test_an_unexpected_error_is_one_line_and_exit_1(
        self, filled: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bug shows as one line; -v adds the traceback for a report."""
        import approvalflow.cli.show as show

        def broken(*args: object, **kwargs: object) -> str:
            raise ZeroDivisionError("division by zero")

        monkeypatch.setattr(show, "render", broken)
        project_line, _ = run_cli(["show", "--store", filled], capsys, 0)
        project = project_line.split()[0]
        _, err = run_cli(["show", project, "--store", filled], capsys, 1)
        assert err == (
            "approvalflow: unexpected error (ZeroDivisionError): division by zero;"
            " run with -v for the traceback\n"
        )
        capsys.readouterr()
        assert main(["-v", "show", project, "--store", filled]) == 1
        assert "Traceback" in capsys.readouterr().err


def _python_m(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "approvalflow", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


class TestAsAProcess:
    def test_python_m_approvalflow_and_its_exit_status(self) -> None:
        """`python -m approvalflow` is the same command, with the same exit status."""
        done = _python_m("show", "--store", "nosuch://x")
        assert done.returncode == 2
        assert done.stdout == "" and "unknown store URL" in done.stderr
        assert "Traceback" not in done.stderr
        assert _python_m("--version").stdout.startswith("approvalflow ")

    def test_a_closed_pipe_ends_quietly(self, filled: str) -> None:
        """`approvalflow show | head`: the reader goes away before the output is written."""
        process = subprocess.Popen(
            [sys.executable, "-m", "approvalflow", "show", "--store", filled],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) == 1
        assert "Traceback" not in err and "BrokenPipeError" not in err


class TestStoreCommands:
    def test_init_creates_then_reading_works_and_migrate_needs_a_store(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Creating is explicit; migrate refuses a store that does not exist."""
        url = f"sqlite:///{tmp_path / 'new.db'}"
        run_cli(["store", "migrate", "--store", url], capsys, 2)
        assert not (tmp_path / "new.db").exists()
        out, _ = run_cli(["store", "init", "--store", url], capsys, 0)
        assert out == f"store created: {url}\n"
        out, _ = run_cli(["show", "--store", url], capsys, 0)
        assert out == "no projects in this store\n"
        out, _ = run_cli(["audit", "verify", "--store", url], capsys, 0)
        assert out.startswith("OK: 0 projects, 0 events")
        out, _ = run_cli(["store", "init", url], capsys, 0)
        assert out == f"store exists already: {url}\n"
        out, _ = run_cli(["store", "migrate", "--store", url], capsys, 0)
        assert out == f"store up to date: {url}\n"

    def test_a_postgresql_schema_is_not_created_by_reading(
        self, postgres_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`?schema=typo` used to create the schema."""
        import psycopg

        schema = f"t_typo_{uuid.uuid4().hex[:10]}"
        url = f"{postgres_url}?schema={schema}"
        for command in (["show"], ["audit", "verify"], ["report", "metrics"]):
            _, err = run_cli([*command, "--store", url], capsys, 2)
            assert "no approvalflow store in PostgreSQL at" in err and f"(schema {schema})" in err
        with psycopg.connect(postgres_url) as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
        assert found is None
        try:
            run_cli(["store", "init", "--store", url], capsys, 0)
            out, _ = run_cli(["show", "--store", url], capsys, 0)
            assert out == "no projects in this store\n"
        finally:
            with psycopg.connect(postgres_url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


ACTORS_WITH_YAML_11_WORDS = textwrap.dedent(
    """\
    no: {roles: [officer], department: zj}
    0600: {roles: [officer], department: fgw, name: 张三}
    on: {roles: [leader]}
    """
)


class TestActorsFile:
    def test_ids_stay_as_written(self, tmp_path: Path) -> None:
        """Plain YAML read `no` as False and `0600` as 384."""
        from approvalflow.cli.worker import load_actors

        path = tmp_path / "actors.yaml"
        path.write_text(ACTORS_WITH_YAML_11_WORDS, encoding="utf-8")
        actors = load_actors(path)
        assert [actor.id for actor in actors] == ["no", "0600", "on"]
        assert actors[1].name == "张三" and actors[1].department == "fgw"


class TestShowWritesTimesOneWay:
    def test_the_timeline_writes_deadlines_as_the_deadlines_section_does(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`due=2026-03-12T00:00:00+08:00` was the same deadline as `2026-03-11 24:00`."""
        project = run_cli(["show", "--store", filled], capsys, 0)[0].split()[0]
        out, _ = run_cli(
            ["show", project, "--store", filled, "--at", "2026-03-04 10:00"], capsys, 0
        )
        assert "T00:00:00+08:00" not in out and "+08:00" not in out
        assert "due=2026-03-11 24:00" in out


class TestEveryCommandsOwnMistakes:
    @pytest.mark.parametrize(
        "argv,said",
        [
            (["audit", "verify", "--expect", "twelve"], "--expect takes COUNT:HASH"),
            (["audit", "verify", "--store", "memory://"], "keeps no audit chain"),
            (["diagram", "--plugin", "nosuch"], "cannot load the plugins given with --plugin"),
            (["diagram", "--format", "png"], "invalid choice: 'png'"),
            (["worker", "--once", "--poll", "0"], "--poll takes a positive number"),
            (["worker", "--once", "--plugin", "nosuch"], "cannot load the plugins"),
            (["report", "metrics", "--plugin", "nosuch"], "nosuch"),
            (["show", "--plugin", "nosuch"], "nosuch"),
            (["store", "init", "--store", "nosuch://x"], "unknown store URL"),
            (["store", "migrate", "--store", "sqlite:x"], "not an SQLite URL"),
            (["scenario", "run", "no/such/folder"], "no such file or folder: no/such/folder"),
            (["scenario"], "the following arguments are required"),
        ],
        ids=lambda value: " ".join(value) if isinstance(value, list) else None,
    )
    def test_is_a_usage_error(
        self, argv: list[str], said: str, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 2, the reason on stderr, nothing on stdout."""
        if "--store" not in argv and argv[0] not in ("diagram", "scenario"):
            argv = [*argv, "--store", filled]
        out, err = run_cli(argv, capsys, 2)
        assert out == "" and said in err

    def test_plugins_recorded_in_the_store_that_are_not_installed(self) -> None:
        """Without --plugin the store's record is used; a missing plugin is named."""
        from approvalflow.cli.common import CommandLineError, open_engine
        from approvalflow.stores import MemoryStore

        class Recorded(MemoryStore):
            def recorded_plugins(self) -> list[str]:
                return ["county_that_is_not_installed"]

        with pytest.raises(CommandLineError, match="recorded in the store"):
            open_engine(Recorded(), [])
        assert open_engine(Recorded(), ["console"]).plugin_manager.has_plugin("console")
