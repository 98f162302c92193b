"""Open Binary Client Protocol 2.x: frames in, frames out.

This is the member's side of the codecs. The official client package only ships the
client half (encode request / decode response), so the member reads requests and
writes responses and events itself (spec G16). Layout facts live in
``../shared/hazelcast-member-spec.md`` §1; the contract tests in
``tests/unit/bus/test_member_codecs.py`` check every codec here against the pinned
client's own encoders and decoders, so a client upgrade that moves a field fails there.

Frame: int32 LE length (including the 6-byte header), uint16 LE flags, body.
A message is frames up to the one carrying IS_FINAL.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from dolphin.bus.member.errors import HzError, ProtocolViolation

# ---------------------------------------------------------------- flags
BEGIN_FRAGMENT = 1 << 15
END_FRAGMENT = 1 << 14
UNFRAGMENTED = BEGIN_FRAGMENT | END_FRAGMENT
IS_FINAL = 1 << 13
BEGIN_DATA_STRUCTURE = 1 << 12
END_DATA_STRUCTURE = 1 << 11
IS_NULL = 1 << 10
IS_EVENT = 1 << 9

HEADER_SIZE = 6
REQUEST_FIXED_OFFSET = 16  # type, correlation id, partition id
RESPONSE_FIXED_OFFSET = 13  # type, correlation id, backup acks
EVENT_FIXED_OFFSET = 16  # type, correlation id, partition id
UUID_SIZE = 17

_FRAME_HDR = struct.Struct("<iH")
_REQ_HDR = struct.Struct("<iqi")
_RESP_HDR = struct.Struct("<iHiqB")
_EVENT_HDR = struct.Struct("<iHiqi")
_I8 = struct.Struct("<b")
_U8 = struct.Struct("<B")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_UUID = struct.Struct("<?QQ")

NULL_FRAME = _FRAME_HDR.pack(HEADER_SIZE, IS_NULL)
BEGIN_FRAME = _FRAME_HDR.pack(HEADER_SIZE, BEGIN_DATA_STRUCTURE)
END_FRAME = _FRAME_HDR.pack(HEADER_SIZE, END_DATA_STRUCTURE)

Frame = tuple[int, bytes]  # (flags, body)
T = TypeVar("T")


class MalformedRequest(HzError):
    """A well-framed request whose parameters cannot be read: answered, not fatal."""

    code = 23
    class_name = "java.lang.IllegalArgumentException"


# ---------------------------------------------------------------- uuids
def encode_uuid(value: uuid.UUID | None) -> bytes:
    """17 bytes: bool isNull, then msb and lsb as little-endian int64."""
    if value is None:
        return _UUID.pack(True, 0, 0)
    n = value.int
    return _UUID.pack(False, n >> 64, n & 0xFFFFFFFFFFFFFFFF)


def decode_uuid(buf: bytes, offset: int) -> uuid.UUID | None:
    is_null, msb, lsb = _UUID.unpack_from(buf, offset)
    if is_null:
        return None
    return uuid.UUID(int=(msb << 64) | lsb)


# ---------------------------------------------------------------- inbound
class Request:
    """One inbound message with a cursor over its frames.

    Fixed-size parameters sit in the initial frame after the 16-byte request header;
    `fixed_*` take offsets relative to that (the client's encode offsets minus 22).
    Variable-size parameters are the following frames, read in order.
    """

    __slots__ = ("frames", "_pos", "message_type", "correlation_id", "partition_id", "flags", "oversized_bytes")

    def __init__(self, frames: list[Frame], oversized_bytes: int = 0) -> None:
        flags, body = frames[0]
        if len(body) < REQUEST_FIXED_OFFSET:
            raise ProtocolViolation(f"initial frame of {len(body)} bytes is shorter than a request header")
        self.frames = frames
        self.flags = flags
        self.oversized_bytes = oversized_bytes  # > 0: the request was over the frame cap and thrown away
        self.message_type, self.correlation_id, self.partition_id = _REQ_HDR.unpack_from(body, 0)
        self._pos = 1

    # fixed-size parameters -------------------------------------------------
    def _fixed(self, fmt: struct.Struct, offset: int) -> int:
        body = self.frames[0][1]
        at = REQUEST_FIXED_OFFSET + offset
        if len(body) < at + fmt.size:
            raise MalformedRequest(f"request 0x{self.message_type:06x} is missing a fixed parameter at {offset}")
        return fmt.unpack_from(body, at)[0]

    def fixed_long(self, offset: int) -> int:
        return self._fixed(_I64, offset)

    def fixed_int(self, offset: int) -> int:
        return self._fixed(_I32, offset)

    def fixed_byte(self, offset: int) -> int:
        return self._fixed(_U8, offset)

    def fixed_bool(self, offset: int) -> bool:
        return self._fixed(_U8, offset) != 0

    def fixed_uuid(self, offset: int) -> uuid.UUID | None:
        body = self.frames[0][1]
        at = REQUEST_FIXED_OFFSET + offset
        if len(body) < at + UUID_SIZE:
            raise MalformedRequest(f"request 0x{self.message_type:06x} is missing a uuid at {offset}")
        return decode_uuid(body, at)

    def fixed_uuid_raw(self, offset: int) -> bytes:
        """The 17 raw bytes of a uuid: enough to compare invocation uids."""
        body = self.frames[0][1]
        at = REQUEST_FIXED_OFFSET + offset
        if len(body) < at + UUID_SIZE:
            raise MalformedRequest(f"request 0x{self.message_type:06x} is missing a uuid at {offset}")
        return bytes(body[at:at + UUID_SIZE])

    # variable-size parameters ----------------------------------------------
    def next_frame(self) -> Frame:
        if self._pos >= len(self.frames):
            raise MalformedRequest(f"request 0x{self.message_type:06x} ended before all its parameters")
        frame = self.frames[self._pos]
        self._pos += 1
        return frame

    def _peek_flags(self) -> int:
        if self._pos >= len(self.frames):
            raise MalformedRequest(f"request 0x{self.message_type:06x} ended before all its parameters")
        return self.frames[self._pos][0]

    def _null_next(self) -> bool:
        if self._peek_flags() & IS_NULL:
            self._pos += 1
            return True
        return False

    def string(self) -> str:
        flags, body = self.next_frame()
        if flags & (IS_NULL | BEGIN_DATA_STRUCTURE | END_DATA_STRUCTURE):
            raise MalformedRequest(f"request 0x{self.message_type:06x}: expected a string frame")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedRequest(f"request 0x{self.message_type:06x}: string is not UTF-8") from exc

    def nullable_string(self) -> str | None:
        return None if self._null_next() else self.string()

    def data(self) -> bytes:
        flags, body = self.next_frame()
        if flags & (IS_NULL | BEGIN_DATA_STRUCTURE | END_DATA_STRUCTURE):
            raise MalformedRequest(f"request 0x{self.message_type:06x}: expected a data frame")
        return body

    def nullable_data(self) -> bytes | None:
        return None if self._null_next() else self.data()

    def _begin(self) -> None:
        flags, _ = self.next_frame()
        if not flags & BEGIN_DATA_STRUCTURE:
            raise MalformedRequest(f"request 0x{self.message_type:06x}: expected the start of a structure")

    def _at_end(self) -> bool:
        if self._peek_flags() & END_DATA_STRUCTURE:
            self._pos += 1
            return True
        return False

    def list_of(self, read: Callable[[], T]) -> list[T]:
        self._begin()
        items = []
        while not self._at_end():
            items.append(read())
        return items

    def list_data(self) -> list[bytes]:
        return self.list_of(self.data)

    def list_string(self) -> list[str]:
        return self.list_of(self.string)

    def entry_list_data(self) -> list[tuple[bytes, bytes]]:
        self._begin()
        entries = []
        while not self._at_end():
            key = self.data()
            entries.append((key, self.data()))
        return entries

    def skip_to_structure_end(self) -> None:
        """Skip the rest of a custom type, nested structures included (forward compatibility)."""
        depth = 1
        while depth:
            flags, _ = self.next_frame()
            if flags & END_DATA_STRUCTURE:
                depth -= 1
            elif flags & BEGIN_DATA_STRUCTURE:
                depth += 1

    def raft_group_id(self) -> tuple[str, int, int]:
        """RaftGroupId = BEGIN, {seed long, id long}, name String, END → (name, seed, id)."""
        self._begin()
        _, fixed = self.next_frame()
        if len(fixed) < 16:
            raise MalformedRequest(f"request 0x{self.message_type:06x}: short RaftGroupId")
        seed = _I64.unpack_from(fixed, 0)[0]
        group_id = _I64.unpack_from(fixed, 8)[0]
        name = self.string()
        self.skip_to_structure_end()
        return name, seed, group_id


# ---------------------------------------------------------------- outbound
class Out:
    """Builds one outbound message: an initial frame, then variable frames.

    `finish()` sets IS_FINAL on the last frame (G2). Response initial frames carry a
    backup-acks byte that is always 0 (G1): the client would otherwise wait for
    backups that never come.
    """

    __slots__ = ("buf", "_last", "_base")

    def __init__(self, buf: bytearray, base: int) -> None:
        self.buf = buf
        self._last = 0
        self._base = base

    @classmethod
    def response(cls, message_type: int, correlation_id: int, fixed_size: int = 0) -> Out:
        size = HEADER_SIZE + RESPONSE_FIXED_OFFSET + fixed_size
        buf = bytearray(size)
        _RESP_HDR.pack_into(buf, 0, size, UNFRAGMENTED, message_type, correlation_id, 0)
        return cls(buf, HEADER_SIZE + RESPONSE_FIXED_OFFSET)

    @classmethod
    def event(cls, message_type: int, correlation_id: int, fixed_size: int = 0, partition_id: int = -1) -> Out:
        size = HEADER_SIZE + EVENT_FIXED_OFFSET + fixed_size
        buf = bytearray(size)
        _EVENT_HDR.pack_into(buf, 0, size, UNFRAGMENTED | IS_EVENT, message_type, correlation_id, partition_id)
        return cls(buf, HEADER_SIZE + EVENT_FIXED_OFFSET)

    # fixed-size fields of the initial frame ---------------------------------
    def put_long(self, offset: int, value: int) -> Out:
        _I64.pack_into(self.buf, self._base + offset, value)
        return self

    def put_int(self, offset: int, value: int) -> Out:
        _I32.pack_into(self.buf, self._base + offset, value)
        return self

    def put_byte(self, offset: int, value: int) -> Out:
        _U8.pack_into(self.buf, self._base + offset, value)
        return self

    def put_bool(self, offset: int, value: bool) -> Out:
        _U8.pack_into(self.buf, self._base + offset, 1 if value else 0)
        return self

    def put_uuid(self, offset: int, value: uuid.UUID | None) -> Out:
        at = self._base + offset
        self.buf[at:at + UUID_SIZE] = encode_uuid(value)
        return self

    # variable frames --------------------------------------------------------
    def frame(self, body: bytes | bytearray, flags: int = 0) -> Out:
        buf = self.buf
        self._last = len(buf)
        buf += _FRAME_HDR.pack(HEADER_SIZE + len(body), flags)
        buf += body
        return self

    def null(self) -> Out:
        self._last = len(self.buf)
        self.buf += NULL_FRAME
        return self

    def begin(self) -> Out:
        self._last = len(self.buf)
        self.buf += BEGIN_FRAME
        return self

    def end(self) -> Out:
        self._last = len(self.buf)
        self.buf += END_FRAME
        return self

    def string(self, value: str) -> Out:
        return self.frame(value.encode("utf-8"))

    def nullable_string(self, value: str | None) -> Out:
        return self.null() if value is None else self.string(value)

    def data(self, value: bytes) -> Out:
        return self.frame(value)

    def nullable_data(self, value: bytes | None) -> Out:
        return self.null() if value is None else self.frame(value)

    def list_data(self, values: Iterable[bytes]) -> Out:
        self.begin()
        for value in values:
            self.frame(value)
        return self.end()

    def entry_list_data(self, entries: Iterable[tuple[bytes, bytes]]) -> Out:
        self.begin()
        for key, value in entries:
            self.frame(key)
            self.frame(value)
        return self.end()

    def address(self, host: str, port: int) -> Out:
        """Address = BEGIN, {port int}, host String, END."""
        return self.begin().frame(_I32.pack(port)).string(host).end()

    def string_map(self, values: dict[str, str]) -> Out:
        self.begin()
        for key, value in values.items():
            self.string(key).string(value)
        return self.end()

    def member_info(self, member_uuid: uuid.UUID, host: str, port: int, version: tuple[int, int, int]) -> Out:
        """MemberInfo with the MEMBER endpoint qualifier encoded by hand (G8)."""
        self.begin()
        self.frame(encode_uuid(member_uuid) + b"\x00")  # uuid, liteMember=false
        self.address(host, port)
        self.string_map({})
        self.begin().frame(bytes(version)).end()  # MemberVersion {major, minor, patch}
        self.begin()  # Map<EndpointQualifier, Address>
        self.begin().frame(_I32.pack(0)).null().end()  # EndpointQualifier{type=MEMBER, identifier=null}
        self.address(host, port)
        self.end()
        return self.end()

    def raft_group_id(self, name: str, seed: int, group_id: int) -> Out:
        return self.begin().frame(_I64.pack(seed) + _I64.pack(group_id)).string(name).end()

    def finish(self) -> bytearray:
        flags_at = self._last + 4
        self.buf[flags_at] |= IS_FINAL & 0xFF
        self.buf[flags_at + 1] |= IS_FINAL >> 8
        return self.buf


def empty_response(request_type: int, correlation_id: int) -> bytearray:
    """A response with only an initial frame (IS_FINAL on it)."""
    return Out.response(request_type + 1, correlation_id).finish()


def error_response(correlation_id: int, code: int, class_name: str, message: str | None) -> bytearray:
    """EXCEPTION (type 0) + List<ErrorHolder> with one holder and an empty stack trace."""
    out = Out.response(0, correlation_id)
    out.begin()  # list
    out.begin()  # ErrorHolder
    out.frame(_I32.pack(code))
    out.string(class_name)
    out.nullable_string(message)
    out.begin().end()  # List<StackTraceElement>
    out.end()  # ErrorHolder
    out.end()  # list
    return out.finish()


def tail_frames(out_builder: Out) -> bytes:
    """The variable frames of a finished message (everything after the initial frame)."""
    buf = out_builder.buf
    initial = _I32.unpack_from(buf, 0)[0]
    return bytes(buf[initial:])


# ---------------------------------------------------------------- framing
class OversizedMessage:
    """A request over the frame cap, read and thrown away: only its initial frame is kept, so the
    member can still answer it (naming the operation and the cap) instead of dropping the client."""

    __slots__ = ("initial", "size")

    def __init__(self, initial: Frame, size: int) -> None:
        self.initial = initial
        self.size = size

    def request(self) -> Request:
        return Request([self.initial], oversized_bytes=self.size)


class FrameAssembler:
    """Turns a byte stream into complete messages, reassembling fragments.

    A request whose frames outgrow the cap (a value too large) is skipped without being
    buffered and comes out as an `OversizedMessage`, so the caller gets an error that says
    so. Raises `ProtocolViolation` on an impossible frame length (below the header, or an
    oversized frame with no request before it), an orphan fragment, or a message that
    goes on past four times the cap: after that the stream cannot be trusted and the
    connection must close.
    """

    __slots__ = ("_buf", "_frames", "_frames_bytes", "_fragments", "_max_frame", "_reject", "_reject_bytes",
                 "_skip", "_skip_final")

    def __init__(self, max_frame_bytes: int) -> None:
        self._buf = bytearray()
        self._frames: list[Frame] = []
        self._frames_bytes = 0  # size of the message being assembled: bounded like one frame
        self._fragments: dict[int, list[Frame]] = {}
        self._max_frame = max_frame_bytes
        self._reject: Frame | None = None  # initial frame of an oversized message being skipped
        self._reject_bytes = 0
        self._skip = 0  # bytes of the current oversized frame still to discard
        self._skip_final = False

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete message: non-zero at EOF means a truncated frame."""
        rejecting = self._skip + (HEADER_SIZE if self._reject is not None else 0)
        return len(self._buf) + sum(len(b) + HEADER_SIZE for _, b in self._frames) + rejecting

    def _start_reject(self, length: int, flags: int) -> None:
        frames = self._frames
        initial = frames[0] if frames else None
        if (initial is None or initial[0] & UNFRAGMENTED != UNFRAGMENTED
                or len(initial[1]) < REQUEST_FIXED_OFFSET):
            raise ProtocolViolation(f"impossible frame length {length}")
        self._reject = initial
        self._reject_bytes = self._frames_bytes + length
        self._frames = []
        self._frames_bytes = 0
        self._skip = length
        self._skip_final = bool(flags & IS_FINAL)

    def feed(self, data: bytes) -> list[list[Frame] | OversizedMessage]:
        buf = self._buf
        buf += data
        messages: list[list[Frame] | OversizedMessage] = []
        pos = 0
        end = len(buf)
        unpack = _FRAME_HDR.unpack_from
        while True:
            if self._skip:
                n = min(self._skip, end - pos)
                pos += n
                self._skip -= n
                if self._skip:
                    break  # the rest of the oversized frame is still to come
                if self._skip_final:
                    assert self._reject is not None
                    messages.append(OversizedMessage(self._reject, self._reject_bytes))
                    self._reject = None
                continue
            if end - pos < HEADER_SIZE:
                break
            length, flags = unpack(buf, pos)
            if length < HEADER_SIZE:
                raise ProtocolViolation(f"impossible frame length {length}")
            if self._reject is not None:  # the remaining frames of an oversized message
                self._reject_bytes += length
                if self._reject_bytes > 4 * self._max_frame:
                    raise ProtocolViolation(f"message of more than {4 * self._max_frame} bytes")
                self._skip = length
                self._skip_final = bool(flags & IS_FINAL)
                continue
            if length > self._max_frame or self._frames_bytes + length > self._max_frame:
                self._start_reject(length, flags)
                continue
            if end - pos < length:
                break
            frames = self._frames
            frames.append((flags, bytes(buf[pos + HEADER_SIZE:pos + length])))
            pos += length
            self._frames_bytes += length
            if flags & IS_FINAL:
                self._frames = []
                self._frames_bytes = 0
                if frames[0][0] & UNFRAGMENTED == UNFRAGMENTED:
                    messages.append(frames)
                else:
                    whole = self._fragment(frames)
                    if whole is not None:
                        messages.append(whole)
        if pos:
            del buf[:pos]
        return messages

    def _fragment(self, message: list[Frame]) -> list[Frame] | None:
        flags, body = message[0]
        if len(body) < 8 or len(message) < 2:
            raise ProtocolViolation("fragment without a fragmentation id")
        fragment_id = _I64.unpack_from(body, 0)[0]
        rest = message[1:]
        if flags & BEGIN_FRAGMENT:
            if len(self._fragments) >= 64:
                raise ProtocolViolation("too many fragmented messages in flight")
            self._fragments[fragment_id] = rest
            return None
        existing = self._fragments.get(fragment_id)
        if existing is None:
            raise ProtocolViolation("a fragment without its beginning")
        existing.extend(rest)
        if sum(len(b) for _, b in existing) > self._max_frame:
            raise ProtocolViolation("fragmented message too large")
        if flags & END_FRAGMENT:
            del self._fragments[fragment_id]
            return existing
        return None


def pack_long(value: int) -> bytes:
    return _I64.pack(value)


def pack_int(value: int) -> bytes:
    return _I32.pack(value)
