"""jupyter_server's access log for a success whose DEBUG line no handler takes (issue #22).

:func:`log_success_unwritten` stands in for ``jupyter_server.log.log_request`` only where that
call's line reaches no handler (the server's logger at DEBUG, its handler at INFO): the same
metric observation, the same (absent) output, and none of the URI parsing, formatting and
record making. Everywhere else it declines and ``log_request`` runs.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_server import log as jupyter_log
from jupyter_server.auth import User
from prometheus_client import REGISTRY

from hardened_server.app import HardenedWebApplication
from hardened_server.enforcement import accesslog
from hardened_server.enforcement.accesslog import log_success_unwritten, writes_debug

_names = itertools.count()


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.handled: list[logging.LogRecord] = []

    def handle(self, record: logging.LogRecord) -> bool:
        self.handled.append(record)
        return True


@pytest.fixture
def server_logger() -> Iterator[tuple[logging.Logger, _Collect]]:
    """The shape of the server's logger: DEBUG, not propagating, one handler at INFO."""
    logger = logging.getLogger(f"hardened-server-test-accesslog-{next(_names)}")
    collect = _Collect(logging.INFO)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(collect)
    yield logger, collect
    logger.removeHandler(collect)


def _alone(pair: tuple[logging.Logger, _Collect]) -> tuple[logging.Logger, _Collect]:
    """The logger with its one handler: pytest's capture handlers (level NOTSET, which take
    DEBUG) are added to it for the test's call."""
    logger, collect = pair
    logger.handlers[:] = [collect]
    return pair


class _Request:
    method = "GET"
    uri = "/files/a.txt?token=secret&download=1"
    path = "/files/a.txt"
    remote_ip = "127.0.0.1"
    headers: dict[str, str] = {}

    def request_time(self) -> float:
        return 0.004


class _Handler:
    settings: dict[str, Any] = {}

    def __init__(self, logger: Any, status: int = 200, looked_up: bool = True) -> None:
        self._status = status
        self.request = _Request()
        self.log = logger
        if looked_up:
            self._current_user = User("alice")

    def get_status(self) -> int:
        return self._status

    @property
    def current_user(self) -> Any:
        if not hasattr(self, "_current_user"):
            self._current_user = User("looked-up-late")
        return self._current_user


def _count(handler: _Handler) -> float:
    labels = {
        "method": "GET",
        "handler": f"{__name__}._Handler",
        "status_code": str(handler.get_status()),
    }
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


def _stock(record: bool = True) -> functools.partial[Any]:
    return functools.partial(jupyter_log.log_request, record_prometheus_metrics=record)


@pytest.mark.parametrize("status", [200, 204, 304])
@pytest.mark.parametrize("record", [True, False])
def test_an_unhandled_line_is_log_requests_answer_without_the_line(
    server_logger: tuple[logging.Logger, _Collect], status: int, record: bool
) -> None:
    """The same metric observation as log_request, and no record handled, as for it."""
    logger, collect = _alone(server_logger)
    handler = _Handler(logger, status)
    before = _count(handler)
    _stock(record)(handler)
    by_stock = _count(handler) - before
    assert log_success_unwritten(_stock(record), handler) is True
    assert _count(handler) - before - by_stock == by_stock == (1.0 if record else 0.0)
    assert collect.handled == []


def test_no_uri_parsing_for_an_unhandled_line(
    server_logger: tuple[logging.Logger, _Collect], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saving: log_request parses and scrubs the URI and formats the line first."""
    monkeypatch.setattr(jupyter_log, "_scrub_uri", pytest.fail)
    assert log_success_unwritten(_stock(), _Handler(_alone(server_logger)[0])) is True


@pytest.mark.parametrize(
    ("status", "looked_up", "log_function"),
    [
        (302, True, _stock()),  # INFO and above: logged
        (404, True, _stock()),
        (500, True, _stock()),
        (200, False, _stock()),  # log_request would look the user up
        (200, True, jupyter_log.log_request),  # not the partial
        (200, True, functools.partial(jupyter_log.log_request, None)),
        (200, True, functools.partial(print)),  # another log function
        (200, True, None),  # tornado's own access log
    ],
)
def test_everything_else_is_log_requests(
    server_logger: tuple[logging.Logger, _Collect],
    status: int,
    looked_up: bool,
    log_function: Any,
) -> None:
    handler = _Handler(_alone(server_logger)[0], status, looked_up)
    before = _count(handler)
    assert log_success_unwritten(log_function, handler) is False
    assert _count(handler) == before  # nothing done: the caller logs
    assert "looked-up-late" not in str(getattr(handler, "_current_user", ""))


def test_a_handler_that_takes_debug_gets_log_requests_line(
    server_logger: tuple[logging.Logger, _Collect],
) -> None:
    logger, collect = _alone(server_logger)
    collect.setLevel(logging.DEBUG)
    assert log_success_unwritten(_stock(), _Handler(logger)) is False


@pytest.mark.parametrize("logger_level", [logging.DEBUG, logging.INFO, logging.NOTSET])
@pytest.mark.parametrize("own", [None, logging.NOTSET, logging.DEBUG, logging.INFO])
@pytest.mark.parametrize("parent", [None, logging.DEBUG, logging.INFO])
@pytest.mark.parametrize("propagate", [True, False])
def test_writes_debug_is_whether_logging_hands_a_debug_record_to_a_handler(
    logger_level: int, own: int | None, parent: int | None, propagate: bool
) -> None:
    """Against logging itself: a debug record sent through the logger, and which handlers'
    ``handle`` it reached (a parent with no handler of its own level falls to the root's
    level, WARNING in a fresh process; lastResort takes WARNING and above)."""
    base = logging.getLogger(f"hs-acc-parent-{next(_names)}")
    base.propagate = False
    base.setLevel(logging.DEBUG)
    logger = logging.getLogger(f"{base.name}.child")
    logger.setLevel(logger_level)
    logger.propagate = propagate
    handlers: list[tuple[logging.Logger, _Collect]] = []
    if own is not None:
        handlers.append((logger, _Collect(own)))
    if parent is not None:
        handlers.append((base, _Collect(parent)))
    for where, handler in handlers:
        where.addHandler(handler)
    try:
        predicted = writes_debug(logger)
        logger.debug("x")
        reached = any(handler.handled for _, handler in handlers)
        assert predicted == reached
    finally:
        for where, handler in handlers:
            where.removeHandler(handler)


def test_a_filter_on_the_logger_is_asked(server_logger: tuple[logging.Logger, _Collect]) -> None:
    """logging runs the logger's own filters on every record its level lets through."""
    logger, _ = _alone(server_logger)
    seen: list[Any] = []
    logger.addFilter(seen.append)  # type: ignore[arg-type]
    assert writes_debug(logger) is True


def test_the_application_uses_it(
    server_logger: tuple[logging.Logger, _Collect], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HardenedWebApplication.log_request asks it first, and log_request only when it
    declines; its own duration metric is observed either way."""
    logger, collect = _alone(server_logger)
    asked: list[Any] = []
    monkeypatch.setattr(accesslog, "prometheus_log_method", asked.append)
    app: Any = object.__new__(HardenedWebApplication)
    app.settings = {"log_function": _stock(), "base_url": "/"}
    handler = _Handler(logger)
    handler.request.hs_route_class = "files"  # type: ignore[attr-defined]
    monkeypatch.setattr(jupyter_log, "_scrub_uri", pytest.fail)
    HardenedWebApplication.log_request(app, handler)  # type: ignore[arg-type]
    assert asked == [handler]
    monkeypatch.undo()
    collect.setLevel(logging.DEBUG)
    HardenedWebApplication.log_request(app, handler)  # type: ignore[arg-type]
    assert asked == [handler]
    assert [r.getMessage() for r in collect.handled] == [
        "200 GET /files/a.txt?token=[secret]&download=1 (alice@127.0.0.1) 4.00ms"
    ]
