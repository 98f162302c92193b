"""Errors the embedded member sends to clients, and the one it raises on itself.

A handler raises `HzError`; the dispatcher turns it into an EXCEPTION response (message
type 0) so the official client raises the matching class from ``hazelcast.errors``.
The codes and Java class names are the ones a real member uses, because the client maps
errors by code and shows the class name to the user.

`ProtocolViolation` is different: the peer broke the framing (garbage, a bad length,
a request before authentication). Nothing can be answered on such a stream, so the
transport closes that one connection and logs it once.
"""

from __future__ import annotations


class HzError(Exception):
    """An error answered to the client as an ErrorHolder."""

    code = 18
    class_name = "com.hazelcast.core.HazelcastException"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


class IllegalArgument(HzError):
    code = 23
    class_name = "java.lang.IllegalArgumentException"


class RequestTooLarge(HzError):
    """A request over the member's frame cap: read, thrown away and answered with this."""

    code = 23
    class_name = "java.lang.IllegalArgumentException"


class IllegalMonitorState(HzError):
    code = 26
    class_name = "java.lang.IllegalMonitorStateException"


class IllegalState(HzError):
    code = 27
    class_name = "java.lang.IllegalStateException"


class UnsupportedOperation(HzError):
    code = 61
    class_name = "java.lang.UnsupportedOperationException"


class InstanceNotActive(HzError):
    """Sent while the member shuts down: the client retries after it reconnects."""

    code = 19
    class_name = "com.hazelcast.core.HazelcastInstanceNotActiveException"


class SessionExpired(HzError):
    code = 85
    class_name = "com.hazelcast.cp.internal.session.SessionExpiredException"


class WaitKeyCancelled(HzError):
    code = 86
    class_name = "com.hazelcast.cp.internal.datastructures.exception.WaitKeyCancelledException"


class ProtocolViolation(Exception):
    """The peer broke the wire protocol; its connection is closed."""
