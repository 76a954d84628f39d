"""``approvalflow serve --store URL``: the engine as an HTTP service (uvicorn).

``serve --counties FILE [--store URL]`` serves every county of a province's counties file:
each request goes to the engine of its credential's county (docs/province.md).

Needs the ``server`` extra (``pip install 'approvalflow[server]'``). Run a worker beside it
(``approvalflow worker``) to fire deadlines and deliver notices; the service leaves every
notice in the outbox, where a worker or a pulling system (``/outbox``) takes it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", help="store URL (with --counties: the province's store, for its tokens)"
    )
    parser.add_argument(
        "--counties",
        type=Path,
        help="a province's counties file: serve each of its counties (docs/province.md)",
    )
    parser.add_argument(
        "--county",
        help="the county this one-county service serves: a credential of another is refused",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--actors",
        type=Path,
        help="YAML file: actor id -> {name, roles, department, teams, recuse}",
    )
    parser.add_argument(
        "--plugin", action="append", default=[], help="plugin entry-point name (repeatable)"
    )
    parser.add_argument(
        "--jwt-public-key",
        type=Path,
        help="PEM public key of the host's identity service: accept its JWTs too",
    )
    parser.add_argument("--jwt-audience", help="the audience (aud) a JWT must name")
    parser.add_argument("--jwt-issuer", help="the issuer (iss) a JWT must name")
    parser.add_argument(
        "--public-leaderboard",
        action="store_true",
        help="publish the workbench's 赛马榜 page read-only without sign-in",
    )
    parser.add_argument(
        "--jwt-header",
        help="header in which the reverse proxy passes a person's JWT to the workbench "
        "(such as X-Forwarded-Access-Token); needs --jwt-public-key",
    )
    parser.add_argument(
        "--session-key-file",
        type=Path,
        help="file holding the secret that signs workbench sessions (default: a key of this "
        "process, so sessions end when it restarts)",
    )
    parser.add_argument(
        "--no-workbench", action="store_true", help="serve the API only, no pages at /"
    )
    parser.add_argument(
        "--audit-public-key",
        type=Path,
        help="Ed25519 public key (PEM) that checks the store's checkpoints in /audit/verify "
        "(the service never holds the sealing key)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies whose X-Forwarded-For/-Proto headers are believed (uvicorn)",
    )
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  (asked for here, to say which extra is missing)

        from approvalflow.server import JWTSettings, create_app
    except ImportError as error:
        print(
            f"approvalflow: serve needs the server extra ({error.name} is missing): "
            "pip install 'approvalflow[server]'",
            file=sys.stderr,
        )
        return 2
    from approvalflow.cli.common import CommandLineError
    from approvalflow.cli.worker import load_actors
    from approvalflow.stores import open_store

    _log_requests()
    jwt = None
    if options.jwt_public_key:
        jwt = JWTSettings(
            public_key=options.jwt_public_key.read_text(encoding="utf-8"),
            audience=options.jwt_audience,
            issuer=options.jwt_issuer,
        )
    if options.jwt_header and jwt is None:
        raise CommandLineError("--jwt-header needs --jwt-public-key (the key its JWTs verify with)")
    session_key = None
    if options.session_key_file:
        try:
            session_key = options.session_key_file.read_bytes().strip()
        except OSError as error:
            raise CommandLineError(f"--session-key-file: {error.strerror}") from None
        if len(session_key) < 32:
            raise CommandLineError("--session-key-file must hold at least 32 bytes of secret")
    audit_key = None
    if options.audit_public_key:
        from approvalflow.errors import CheckpointError
        from approvalflow.stores.checkpoints import load_key

        try:
            audit_key = load_key(options.audit_public_key)
        except CheckpointError as error:
            raise CommandLineError(f"--audit-public-key: {error.message}") from None
        if audit_key.can_sign:
            raise CommandLineError(
                "--audit-public-key: the file holds a key that can seal checkpoints; give the "
                "service the Ed25519 public key only (openssl pkey -in KEY -pubout)"
            )
    if options.counties is not None:
        from approvalflow.cli.common import open_province
        from approvalflow.server.app import IF_MATCH_GUARD

        for option, given in (
            ("--actors", options.actors),
            ("--plugin", options.plugin),
            ("--county", options.county),
        ):
            if given:
                raise CommandLineError(
                    f"{option} does not go with --counties: each county's comes from the file"
                )
        if options.public_leaderboard:
            raise CommandLineError(
                "--public-leaderboard does not go with --counties: each 赛马榜 is a county's"
            )
        province = open_province(options, plugins=[IF_MATCH_GUARD], deliver="outbox")
        try:
            app = create_app(
                province=province,
                jwt=jwt,
                workbench=not options.no_workbench,
                session_key=session_key,
                jwt_header=options.jwt_header,
                audit_key=audit_key,
            )
        except BaseException:
            province.close()
            raise
        _serve(app, options, province)
        return 0
    if not options.store:
        raise CommandLineError("serve needs --store URL (or --counties FILE)")
    actors = load_actors(options.actors) if options.actors else []
    store = open_store(options.store)
    app = create_app(
        store=store,
        actors=actors,
        plugins=options.plugin,
        jwt=jwt,
        workbench=not options.no_workbench,
        session_key=session_key,
        jwt_header=options.jwt_header,
        public_leaderboard=options.public_leaderboard,
        county=options.county,
        audit_key=audit_key,
    )
    _serve(app, options, store)
    return 0


def _serve(app: Any, options: argparse.Namespace, store: Any) -> None:
    import uvicorn

    try:
        uvicorn.run(
            app,
            host=options.host,
            port=options.port,
            access_log=False,  # the service logs each request itself, with system and actor
            proxy_headers=True,
            forwarded_allow_ips=options.forwarded_allow_ips,
            log_level="warning",
            http=_http_protocol(),
            # uvloop where it is installed (the server extra installs it), else asyncio.
            loop="auto",
        )
    finally:
        store.close()


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with the h2c upgrade ignored where httptools is installed (with uvloop, a
    quarter less of the server's CPU per request than h11, D300), else uvicorn's h11; never
    uvicorn's own httptools protocol, which drops the body of the h2c upgrade request the
    JDK's java.net.http client sends."""
    try:
        from approvalflow.server.http import UpgradeIgnoringHttpToolsProtocol
    except ImportError:
        return "h11"
    return UpgradeIgnoringHttpToolsProtocol


def _log_requests() -> None:
    """The service's request lines at info, as JSON on stderr, personal numbers masked."""
    import structlog

    from approvalflow.logs import mask_personal_data

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            # Masked before the level and the time are added: they are the service's own
            # values, and the timestamp's 20 digits sent every line through all four of the
            # masking's searches, a third of the line's cost (D286).
            mask_personal_data,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(serializer=_json_lines()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
    )


def _json_lines() -> Callable[..., str]:
    """A serializer for structlog's ``JSONRenderer``: compact JSON with msgspec (UTF-8 as it
    is, not ``\\u`` escapes), a tenth of ``json.dumps``'s cost; a value JSON cannot hold is
    written as structlog writes it (its ``__structlog__()`` text, else its ``repr``)."""
    import msgspec

    def as_text(value: Any) -> str:
        own = getattr(value, "__structlog__", None)
        return str(own()) if callable(own) else repr(value)

    encoder = msgspec.json.Encoder(enc_hook=as_text)

    def serialize(event: Any, **_: Any) -> str:
        return encoder.encode(event).decode()

    return serialize
