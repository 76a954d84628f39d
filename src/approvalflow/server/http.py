"""uvicorn's httptools protocol, answering a request that asks to upgrade to anything but a
websocket as the plain HTTP/1.1 request it also is, body and all (RFC 9110 7.8: a server may
ignore ``Upgrade``). ``approvalflow serve`` runs it when httptools is installed (D300).

Why it is needed: the JDK's ``java.net.http`` client sends ``Connection: Upgrade,
HTTP2-Settings`` and ``Upgrade: h2c`` on its first request, a ``POST``'s body included. On any
upgrade httptools tells llhttp to skip the body and stop at the end of the head
(``HttpParserUpgrade``); uvicorn has by then started the request, which its application reads
as bodiless (a 422), and drops the body bytes. Here such a request is not started at the end of
its head; when the parser stops, the head is written again without the upgrade and fed, with
the bytes after it, to a fresh parser, which reads the request as any other.

It leans on uvicorn's internals (the protocol's ``parser``, ``url`` and ``headers``, its parser
callbacks and ``data_received``'s handling of the parser's errors), so ``pyproject.toml`` pins
the uvicorn versions it was tested with; ``tests/test_service_http.py`` holds it to that.
"""

from __future__ import annotations

import contextlib

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["UpgradeIgnoringHttpToolsProtocol"]

# Removed from a request whose upgrade is ignored: the offer itself, and h2c's settings, which
# mean nothing without it. Connection's other options (keep-alive, close) stay: they still say
# how this connection is kept.
_UPGRADE_HEADERS = frozenset({b"upgrade", b"http2-settings"})


class UpgradeIgnoringHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that serves an h2c (or any non-websocket) upgrade request as
    HTTP/1.1; a websocket upgrade, and ``CONNECT``, go uvicorn's way unchanged."""

    # The head of the request whose upgrade is being ignored, as the fresh parser will read it;
    # set at the end of the head, used once the old parser stops. None on the common path.
    _replacement_head: bytes | None = None

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        # A loop, not one feed: the bytes after an ignored upgrade may hold another such request.
        while True:
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserError:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
                return
            except httptools.HttpParserUpgrade as upgrade:
                head = self._replacement_head
                if head is None:  # a websocket or CONNECT: as uvicorn does
                    if self._should_upgrade():
                        self.handle_websocket_upgrade()
                    else:
                        self._unsupported_upgrade_warning()
                    return
                self._replacement_head = None
                # The offset is where the head ended in this feed: llhttp left the body unread.
                (offset,) = upgrade.args
                self.parser = _new_parser(self)
                data = head + data[offset:]

    def on_headers_complete(self) -> None:
        if self.parser.should_upgrade() and self._upgrade_is_ignored():
            # Not started here: llhttp skips this head's body, so the request would run bodiless.
            self._replacement_head = self._head_without_upgrade()
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The old parser ends the ignored request at its head (with no on_body before it); the
        # fresh parser's reading of it is the one that counts.
        if self._replacement_head is None:
            super().on_message_complete()

    def _upgrade_is_ignored(self) -> bool:
        # CONNECT is an "upgrade" to llhttp whatever its headers: written again it would stop
        # the fresh parser just the same, so it stays uvicorn's.
        return self._get_upgrade() != b"websocket" and self.parser.get_method() != b"CONNECT"

    def _head_without_upgrade(self) -> bytes:
        version = self.parser.get_http_version().encode("ascii")
        head = [self.parser.get_method(), b" ", self.url, b" HTTP/", version, b"\r\n"]
        for name, value in self.headers:  # names lower-cased by uvicorn's on_header
            if name in _UPGRADE_HEADERS:
                continue
            if name == b"connection":
                kept = [
                    option
                    for option in value.split(b",")
                    if option.strip().lower() not in _UPGRADE_HEADERS
                ]
                if not kept:
                    continue
                value = b",".join(kept).strip()
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        return b"".join(head)


def _new_parser(protocol: HttpToolsProtocol) -> httptools.HttpRequestParser:
    parser = httptools.HttpRequestParser(protocol)
    # As uvicorn sets its own parser up (answer a pipelined request after a close); httptools
    # before 0.6.3 has no such setting, and uvicorn allows it.
    with contextlib.suppress(AttributeError):
        parser.set_dangerous_leniencies(lenient_data_after_close=True)
    return parser
