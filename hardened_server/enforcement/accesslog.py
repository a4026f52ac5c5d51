"""jupyter_server's access log line for a success nobody will read, without writing it.

jupyter_server's ``log_request`` (``jupyter_server/log.py``, the ``log_function`` tornado
setting) logs every answer below 300 (and 304) at DEBUG. It builds the line first (the URI
parsed and scrubbed of tokens with ``urlparse``, the user looked up, the message formatted),
then ``logging`` makes a record of it and hands it to no handler: the server's logger is at
DEBUG, its handler at INFO. On ``GET /files`` that was work stock does too for nothing (issue
#22). :func:`log_success_unwritten` does what that call does when no handler would take the
line: the ``http_request_duration_seconds`` observation (``prometheus_log_method``), nothing
else. Whenever the line could be written or observed (another log function, an answer logged
at INFO or above, a handler that takes DEBUG, a filter on the logger other than our scrubber,
which leaves unhandled records alone, a custom record factory, a handler whose user was never
looked up: reading ``current_user`` may authenticate, and records what it decides),
``log_request`` runs as before.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from jupyter_server.log import log_request as jupyter_log_request
from jupyter_server.prometheus.log_functions import prometheus_log_method
from tornado.log import access_log

from hardened_server.trail.scrub import _LoggerScrub

__all__ = ["log_success_unwritten", "writes_debug"]


def writes_debug(logger: Any) -> bool:
    """Could a DEBUG record created on ``logger`` reach a handler or a filter with effects?
    ``logging.Logger.handle`` and ``callHandlers``, asked without a record; True whenever in
    doubt."""
    if type(logger) is not logging.Logger and not isinstance(logger, logging.RootLogger):
        return True  # an adapter or a custom class: let it log
    if not logger.isEnabledFor(logging.DEBUG) or logger.disabled:
        return False
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return True
    if any(type(f) is not _LoggerScrub for f in logger.filters):
        return True
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if handler.level <= logging.DEBUG:
                return True
        if not current.propagate:
            break
        current = current.parent
    if not found:  # logging's last resort (WARNING), or its one-time "no handlers" warning
        last = logging.lastResort
        return last is None or last.level <= logging.DEBUG
    return False


def log_success_unwritten(log_function: Any, handler: Any) -> bool:
    """Observe ``handler``'s request as jupyter_server's ``log_request`` would and return True
    when no handler would take its log line; False (nothing done) when the caller must call
    ``log_function`` itself."""
    if (
        type(log_function) is not functools.partial
        or log_function.func is not jupyter_log_request
        or log_function.args
        or not set(log_function.keywords) <= {"record_prometheus_metrics"}
    ):
        return False
    status = handler.get_status()
    if not (status < 300 or status == 304):  # log_request's DEBUG answers
        return False
    if not hasattr(handler, "_current_user"):  # log_request would look the user up
        return False
    try:
        logger = handler.log
    except AttributeError:
        logger = access_log
    if writes_debug(logger):
        return False
    if log_function.keywords.get("record_prometheus_metrics", True):
        prometheus_log_method(handler)
    return True
