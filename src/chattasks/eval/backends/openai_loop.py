"""The ``openai`` backend's event loop: an asyncio loop in a private thread, and ``gather``.

The synchronous ``Backend`` methods hand their coroutines to this loop and wait, so they work
from any thread, with or without an event loop of their own (a notebook, a worker thread). The
loop owns the transport's one ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # only named in annotations
    import httpx

T = TypeVar("T")


async def gather(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently, results in order; on the first error cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class LoopThread:
    """An asyncio loop in a daemon thread, with the transport's one httpx client living on it."""

    def __init__(self, make_client: Callable[[], httpx.AsyncClient]) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chattasks-openai", daemon=True)
        self.thread.start()
        self.client = self.run(self._make(make_client))

    @staticmethod
    async def _make(make_client: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
        return make_client()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result; an interrupted wait cancels it."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:  # also KeyboardInterrupt: stop the requests still in flight
            future.cancel()
            raise

    def stop(self) -> None:
        """Close the client, stop the loop and join its thread (only in the process that started it)."""
        if os.getpid() != self.pid or self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:  # collected on its own loop: cannot wait here
            self.loop.create_task(self.client.aclose()).add_done_callback(lambda _: self.loop.stop())
            return
        if self.thread.is_alive():
            try:
                self.run(self.client.aclose())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join()
        self.loop.close()
