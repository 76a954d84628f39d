"""``approvalflow report leaderboard|metrics|late|ratings --store URL``: the monthly 赛马榜, the
metrics of rule 12 per team and per department, the late items by department, and the 好差评
figures per department and month, as a terminal table, JSON or CSV.

``report province --counties FILE``: the counties of a province ranked on one measure (with
``--top N`` its red and black lists), or its departments across counties (``--departments``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from approvalflow.cli.common import (
    CommandLineError,
    add_actors_argument,
    add_county_arguments,
    add_store_argument,
    county_engine,
    parse_time,
)
from approvalflow.money import format_amount
from approvalflow.names import Names

__all__ = [
    "AMOUNT_COLUMNS",
    "add_arguments",
    "county_rank_rows",
    "department_rank_rows",
    "late_rows",
    "leaderboard_rows",
    "metrics_rows",
    "rating_rows",
    "run",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    reports = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    board = reports.add_parser("leaderboard", help="teams ranked by points earned in a month")
    board.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-03 (Asia/Shanghai)")
    metrics = reports.add_parser("metrics", help="signing, start, production and funds rates")
    metrics.add_argument(
        "--month",
        default=None,
        help="YYYY-MM: the projects signed in that month only (default: all projects)",
    )
    late = reports.add_parser("late", help="open reviews and branches past their deadline")
    late.add_argument("--at", default=None, help="local time to judge lateness at (default: now)")
    ratings = reports.add_parser(
        "ratings", help="好差评 per department and month: ratings, bad ones, rectifications"
    )
    ratings.add_argument("--month", default=None, help="YYYY-MM: that month only (default: all)")
    for sub in (board, metrics, late, ratings):
        add_store_argument(sub)
        sub.add_argument("--format", choices=["table", "json", "csv"], default="table")
        sub.add_argument(
            "--plugin",
            action="append",
            default=[],
            help="county plugin (default: the plugins recorded in the store)",
        )
        add_actors_argument(sub)
        add_county_arguments(sub)
        sub.set_defaults(run=run)
    from approvalflow.province import COUNTY_MEASURES

    province = reports.add_parser(
        "province", help="a province's counties ranked (红黑榜), or its departments across them"
    )
    province.add_argument(
        "--counties", type=Path, required=True, help="the province's counties file"
    )
    province.add_argument("--store", default=None, help="the province's store URL")
    province.add_argument(
        "--on",
        choices=COUNTY_MEASURES,
        default="start_rate",
        help="the measure counties are ranked on (default: start_rate; points need --month)",
    )
    province.add_argument("--month", default=None, help="YYYY-MM: the month of --on points")
    province.add_argument(
        "--top", type=int, default=None, help="N: the red list (best N) and black list (worst N)"
    )
    province.add_argument(
        "--departments",
        action="store_true",
        help="rank every county's departments instead: fewest late items, then fewest days",
    )
    province.add_argument(
        "--at", default=None, help="with --departments: judge lateness at this local time"
    )
    province.add_argument("--format", choices=["table", "json", "csv"], default="table")
    province.set_defaults(run=run_province)


def run(options: argparse.Namespace) -> int:
    month_given = options.report == "leaderboard" or (
        options.report in ("ratings", "metrics") and options.month is not None
    )
    if month_given and not _valid_month(options.month):
        raise CommandLineError(f"--month takes YYYY-MM (such as 2026-03), not {options.month!r}")
    at = parse_time("--at", options.at) if options.report == "late" else None
    with county_engine(options) as (engine, actors):
        names = Names.of(engine.settings, actors)
        if options.report == "leaderboard":
            rows = leaderboard_rows(engine, options.month, names)
            title = f"赛马榜 {options.month}: teams by points earned in the month"
        elif options.report == "late":
            rows = late_rows(engine, at, names)
            title = "Late items by department (逾期事项)"
        elif options.report == "ratings":
            rows = rating_rows(engine, options.month, names)
            title = "好差评 by department and month: ratings and rectifications (整改)"
        else:
            rows = metrics_rows(engine, names, options.month)
            title = "Metrics (rule 12): all projects, then per team, then per department"
            if options.month:
                title = f"Metrics (rule 12) of the projects signed in {options.month}: " + (
                    "all, then per team, then per department"
                )
    print(_render(rows, options.format, title))
    return 0


def run_province(options: argparse.Namespace) -> int:
    from approvalflow.cli.common import open_province

    if options.month is not None and not _valid_month(options.month):
        raise CommandLineError(f"--month takes YYYY-MM (such as 2026-03), not {options.month!r}")
    if options.on == "points" and options.month is None and not options.departments:
        raise CommandLineError("--on points counts a month's points: give --month YYYY-MM")
    if options.top is not None and options.top < 1:
        raise CommandLineError(f"--top takes a positive number of counties, not {options.top}")
    at = parse_time("--at", options.at)
    province = open_province(options)
    try:
        if options.departments:
            rows = department_rank_rows(province, at)
            title = "Departments across the province: fewest late items, then fewest days taken"
        else:
            rows = county_rank_rows(province, options.on, options.month, options.top)
            title = f"Counties ranked on {options.on}" + (
                f" (红榜 best {options.top}, 黑榜 worst {options.top})" if options.top else ""
            )
    finally:
        province.close()
    print(_render(rows, options.format, title))
    return 0


def county_rank_rows(
    province: Any, measure: str, month: str | None = None, top: int | None = None
) -> list[dict[str, Any]]:
    """One row per county: rank, county and its name, and the measure's value (a column named
    after it). With ``top``, the red list's rows then the black list's, each marked."""

    def row(rank: Any, listed: str | None = None) -> dict[str, Any]:
        found = {"rank": rank.rank, "county": rank.county, "county_name": rank.name}
        if listed is not None:
            found = {"list": listed, **found}
        found[measure] = _number(rank.value)
        return found

    if top is None:
        return [row(rank) for rank in province.ranking(measure, month=month)]
    lists = province.red_black(measure, top, month=month)
    return [row(rank, "red") for rank in lists.red] + [row(rank, "black") for rank in lists.black]


def department_rank_rows(province: Any, at: datetime | None = None) -> list[dict[str, Any]]:
    """One row per department of each county, ranked across the province (D219)."""
    return [
        {
            "rank": row.rank,
            "county": row.county,
            "county_name": row.county_name,
            "department": row.department,
            "department_name": row.department_name,
            "late": row.late,
            "avg_days": _number(row.avg_days),
            "decided": row.decided,
        }
        for row in province.department_ranking(at)
    ]


def leaderboard_rows(engine: Any, month: str, names: Names | None = None) -> list[dict[str, Any]]:
    """The month's 赛马榜: rank, team (and its name), points, last month's rank and points,
    and the change of rank (``+2``, ``-1``, ``=``, ``new``)."""
    names = names or Names.of(engine.settings, engine.actors)
    return [
        {
            "rank": row.rank,
            "team": row.team,
            "team_name": names.team(row.team),
            "points": row.points,
            "previous_rank": row.previous_rank,
            "previous_points": row.previous_points,
            "change": _change(row.rank, row.previous_rank),
        }
        for row in engine.leaderboard(month)
    ]


def late_rows(
    engine: Any, at: datetime | str | None, names: Names | None = None
) -> list[dict[str, Any]]:
    """One row per late item: department, project, what, due, working days overdue, and the
    branch's handler and acting deputy where named, and the warning ladder's last card shown
    on it. Ids, each with its ``*_name`` beside it (the project's name too)."""
    from approvalflow.calendar import format_local, parse_local
    from approvalflow.display import CARD_NAMES

    names = names or Names.of(engine.settings, engine.actors)
    now = (parse_local(at) if isinstance(at, str) else at) or engine.clock.now()
    rows = []
    late = engine.late_items(now)
    titles = engine.project_names(item.project for items in late.values() for item in items)
    for dept, items in late.items():
        for item in items:
            left = item.working_days_left(engine.calendar, now)
            rows.append(
                {
                    "department": dept,
                    "department_name": names.department(dept),
                    "project": item.project,
                    "project_name": titles.get(item.project, item.project),
                    "what": item.what,
                    "state": item.state,
                    "due": format_local(item.due),
                    "wd_overdue": -left if left is not None else None,
                    "handler": item.handler or "",
                    "handler_name": names.actor(item.handler) if item.handler else "",
                    "deputy": item.deputy or "",
                    "deputy_name": names.actor(item.deputy) if item.deputy else "",
                    "card": f"{item.card} {CARD_NAMES[item.card]}" if item.card else None,
                }
            )
    return rows


def rating_rows(
    engine: Any, month: str | None = None, names: Names | None = None
) -> list[dict[str, Any]]:
    """One row per department and month with ratings (``Engine.rating_metrics``)."""
    names = names or Names.of(engine.settings, engine.actors)
    rows: list[dict[str, Any]] = []
    for dept, months in engine.rating_metrics(month=month).items():
        for rated_in, figures in months.items():
            rows.append(
                {
                    "department": dept,
                    "department_name": names.department(dept),
                    "month": rated_in,
                    "ratings": figures["count"],
                    "average": _number(figures["average"]),
                    "bad": figures["bad"],
                    "rectifications": figures["rectifications"],
                    "on_time": figures["on_time"],
                    "late": figures["late"],
                    "open": figures["open"],
                }
            )
    return rows


def metrics_rows(
    engine: Any, names: Names | None = None, month: str | None = None
) -> list[dict[str, Any]]:
    """One row for all projects, one per team, one per department's working days, then one
    per metric a plugin adds (the store answers the built-in ones without loading projects;
    the plugins' need the projects). ``name`` is the team's or department's id,
    ``display_name`` its name; amounts are whole yuan. ``month``: of the projects signed in
    that month only (D177)."""
    names = names or Names.of(engine.settings, engine.actors)
    overall = engine.metrics(plugins=False, month=month)
    rows = [_metric_row("all", "", "", overall)]
    for team, found in sorted(engine.team_metrics(month=month).items()):
        rows.append(_metric_row("team", team, names.team(team), found))
    for dept, days in overall["department_days"].items():
        rows.append(
            {
                "scope": "department",
                "name": dept,
                "display_name": names.department(dept),
                "decided": days["count"],
                "avg_wd": _number(days["avg"]),
                "max_wd": days["max"],
            }
        )
    if engine.plugin_manager.hook.approvalflow_metrics.get_hookimpls():
        for name, value in engine.metrics(month=month).items():
            if name not in overall:
                rows.append({"scope": "plugin", "metric": name, "value": _plain(value)})
    return rows


def _plain(value: Any) -> Any:
    """A plugin metric as JSON can hold it: fractions as rounded numbers, decimals as text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    return _number(value)


def _metric_row(scope: str, name: str, shown: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "scope": scope,
        "name": name,
        "display_name": shown,
        "signed_count": metrics["signed_count"],
        "signed_amount": metrics["signed_amount"],
        "start_rate": _number(metrics["start_rate"]),
        "production_rate": _number(metrics["production_rate"]),
        "funds_in_place": metrics["funds_in_place"],
        "funds_rate": _number(metrics["funds_rate"]),
    }


def _number(value: Any) -> Any:
    if isinstance(value, Fraction):
        return round(float(value), 4)
    return value


def _change(rank: int, previous: int | None) -> str:
    if previous is None:
        return "new"
    if previous == rank:
        return "="
    return f"+{previous - rank}" if previous > rank else f"-{rank - previous}"


def _valid_month(month: str) -> bool:
    # Exactly YYYY-MM: "2026-3" would match no month's rows and answer an empty table.
    return re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) is not None


def _render(rows: list[dict[str, Any]], fmt: str, title: str) -> str:
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: _flat(value) for key, value in row.items()} for row in rows)
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return f"{title}\n(no rows)"
    # Rows of different shapes (projects, departments) print as separate tables.
    lines = [title]
    groups: list[list[dict[str, Any]]] = []
    for row in rows:
        if groups and list(groups[-1][0]) == list(row):
            groups[-1].append(row)
        else:
            groups.append([row])
    for group in groups:
        # An id and its name print as one cell, `郭强 (guo)`; the name column is not repeated.
        named = {_named_column(key): key for key in group[0] if _named_column(key) in group[0]}
        keys = [key for key in group[0] if key not in named.values()]
        cells = [
            [
                _labelled(row.get(key), row.get(named[key]))
                if key in named
                else _cell(key, row.get(key))
                for key in keys
            ]
            for row in group
        ]
        widths = [
            max(_width(key), *(_width(line[i]) for line in cells)) for i, key in enumerate(keys)
        ]
        lines.append("  ".join(_pad(key, w) for key, w in zip(keys, widths, strict=True)))
        for line in cells:
            lines.append("  ".join(_pad(c, w) for c, w in zip(line, widths, strict=True)))
        lines.append("")
    return "\n".join(lines).rstrip()


def _named_column(key: str) -> str:
    """The id column a name column belongs to: ``team`` for ``team_name``, ``name`` for
    ``display_name`` (``""`` for any other column)."""
    if key == "display_name":
        return "name"
    return key.removesuffix("_name") if key.endswith("_name") else ""


def _labelled(value: Any, name: Any) -> str:
    if value is None or value == "":
        return "-" if value is None else ""
    if not name or name == value:
        return str(value)
    return f"{name} ({value})"


#: Columns of whole yuan, printed in a table as people write amounts (``3.5亿``, ``2,800万``).
AMOUNT_COLUMNS = frozenset({"signed_amount", "funds_in_place"})


def _flat(value: Any) -> Any:
    """A mapping or list (a plugin's metric) as one cell: its JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return str(_flat(value))
    if column.endswith("_rate") and isinstance(value, float | int):
        return f"{value:.1%}"
    if column in AMOUNT_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        return format_amount(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
