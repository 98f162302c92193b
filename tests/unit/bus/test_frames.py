"""Framing: any chunking of the stream gives the same messages; broken streams are refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.bus.member.errors import ProtocolViolation
from dolphin.bus.member.protocol import BEGIN_FRAGMENT, END_FRAGMENT, IS_FINAL, UNFRAGMENTED, FrameAssembler

HDR = struct.Struct("<iH")


def frame(body: bytes, flags: int = 0) -> bytes:
    return HDR.pack(6 + len(body), flags) + body


def message(tag: int, parts: int = 2) -> bytes:
    initial = struct.pack("<iqi", 0x000B00, tag, -1)
    frames = [frame(initial, UNFRAGMENTED | (IS_FINAL if parts == 0 else 0))]
    for i in range(parts):
        frames.append(frame(f"part{i}-{tag}".encode(), IS_FINAL if i == parts - 1 else 0))
    return b"".join(frames)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 64), min_size=1, max_size=40), st.integers(1, 5))
def test_any_chunking_yields_the_same_messages(cuts: list[int], count: int) -> None:
    stream = b"".join(message(i, parts=i % 3) for i in range(count))
    assembler = FrameAssembler(1 << 20)
    got = []
    pos = 0
    for size in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        if pos >= len(stream):
            break
        got.extend(assembler.feed(stream[pos:pos + size]))
        pos += size
    if pos < len(stream):
        got.extend(assembler.feed(stream[pos:]))
    assert [struct.unpack_from("<q", m[0][1], 4)[0] for m in got] == list(range(count))
    assert [len(m) for m in got] == [1 + i % 3 for i in range(count)]
    assert assembler.pending_bytes == 0


def test_fragments_are_reassembled() -> None:
    fid = struct.pack("<q", 77)
    initial = struct.pack("<iqi", 0x010100, 1, -1)
    first = frame(fid, BEGIN_FRAGMENT) + frame(initial, 0) + frame(b"name", IS_FINAL)
    last = frame(fid, END_FRAGMENT) + frame(b"key", 0) + frame(b"value", IS_FINAL)
    assembler = FrameAssembler(1 << 20)
    assert assembler.feed(first) == []
    (whole,) = assembler.feed(last)
    assert [body for _, body in whole] == [initial, b"name", b"key", b"value"]


def test_truncation_shows_as_pending_bytes() -> None:
    data = message(1)
    assembler = FrameAssembler(1 << 20)
    assert assembler.feed(data[:-3]) == []
    assert assembler.pending_bytes > 0


@pytest.mark.parametrize("data", [
    HDR.pack(2, 0),  # shorter than the header itself
    HDR.pack(10_000_000, 0),  # over the limit below
    frame(struct.pack("<q", 5), END_FRAGMENT) + frame(b"x", IS_FINAL),  # a fragment without its beginning
], ids=["too-short", "too-long", "orphan-fragment"])
def test_impossible_streams_are_protocol_violations(data: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        FrameAssembler(1_000_000).feed(data)


def test_a_message_that_never_ends_is_refused() -> None:
    assembler = FrameAssembler(1000)
    with pytest.raises(ProtocolViolation):
        for _ in range(100):
            assembler.feed(frame(b"x" * 50))  # no IS_FINAL, ever


def test_an_oversized_request_is_skipped_unbuffered_and_reported_then_the_stream_goes_on() -> None:
    """A value over the cap: the request comes out as OversizedMessage (answerable), the next one intact."""
    from dolphin.bus.member.protocol import OversizedMessage

    initial = struct.pack("<iqi", 0x010100, 41, 7)
    big = b"v" * 5000
    stream = (frame(initial, UNFRAGMENTED) + frame(b"name") + frame(b"key") + frame(big, IS_FINAL)
              + message(42))
    assembler = FrameAssembler(1000)
    got: list[object] = []
    for i in range(0, len(stream), 300):
        got.extend(assembler.feed(stream[i:i + 300]))
        assert len(assembler._buf) < 1000  # the big frame is never held in memory
    oversized, after = got
    assert isinstance(oversized, OversizedMessage)
    request = oversized.request()
    assert (request.message_type, request.correlation_id) == (0x010100, 41)
    assert request.oversized_bytes == len(stream) - len(message(42))
    assert struct.unpack_from("<q", after[0][1], 4)[0] == 42  # type: ignore[index]
    assert assembler.pending_bytes == 0


def test_a_message_over_the_cap_made_of_small_frames_is_reported_too() -> None:
    from dolphin.bus.member.protocol import OversizedMessage

    initial = struct.pack("<iqi", 0x012C00, 5, -1)  # Map.PutAll with many entries
    stream = frame(initial, UNFRAGMENTED) + b"".join(frame(b"e" * 90) for _ in range(20)) + frame(b"end", IS_FINAL)
    (only,) = FrameAssembler(1000).feed(stream)
    assert isinstance(only, OversizedMessage) and only.request().correlation_id == 5
