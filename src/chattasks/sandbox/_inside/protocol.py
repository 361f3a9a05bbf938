"""The fork server's control channel: length-prefixed JSON messages over two file descriptors.

Each message is a 4-byte big-endian length and a JSON object. The host writes requests to the
server's stdin and reads replies from its stdout (`chattasks.sandbox._handle`); the server uses
`Channel` on its side.
"""

from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct(">I")


class HostGone(Exception):
    """The host closed the control pipe: time to stop everything and leave."""


def encode(message: dict) -> bytes:
    """One message as it travels: its length, then its JSON body."""
    body = json.dumps(message).encode()
    return HEADER.pack(len(body)) + body


def decode(pending: bytearray) -> dict | None:
    """Take the first whole message off the front of `pending`; None while it is incomplete."""
    if len(pending) < HEADER.size:
        return None
    (size,) = HEADER.unpack(pending[: HEADER.size])
    if len(pending) < HEADER.size + size:
        return None
    body = bytes(pending[HEADER.size : HEADER.size + size])
    del pending[: HEADER.size + size]
    return json.loads(body)


class Channel:
    """The server's end: messages read from `read_fd`, written to `write_fd`."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.pending = bytearray()

    def fill(self) -> None:
        """Read what is waiting on the control pipe; raise HostGone at end of file."""
        data = os.read(self.read_fd, 1 << 16)
        if not data:
            raise HostGone
        self.pending += data

    def receive(self) -> dict:
        """Block until one whole message has arrived and return it."""
        while (message := decode(self.pending)) is None:
            self.fill()
        return message

    def send(self, message: dict) -> None:
        """Write one message."""
        data = memoryview(encode(message))
        while data:
            data = data[os.write(self.write_fd, data) :]
