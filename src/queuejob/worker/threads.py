"""The pool of threads that run jobs.

Daemon threads, not ``concurrent.futures``: a job that never returns must not
keep the process alive after the worker has given its job back at shutdown
(ThreadPoolExecutor joins its threads at interpreter exit), and a job over its
timeout must be left to end on its own while a new thread takes its place.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

_STOP = object()


class JobThreads:
    def __init__(self, size: int, run: Callable[[Any], None], name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._run = run
        self._name = name
        self._lock = threading.Lock()
        self._current: dict[threading.Thread, Any] = {}
        self._abandoned: set[threading.Thread] = set()
        self._threads: list[threading.Thread] = []
        self._count = 0
        self._size = size
        self._submitted = 0
        self._ended = 0

    def _spawn(self) -> None:
        self._count += 1
        thread = threading.Thread(target=self._loop, name=f"{self._name}-job-{self._count}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def submit(self, item: Any) -> None:
        # threads are started when jobs need them: a worker whose jobs are all async,
        # or short, keeps few
        busy = self._submitted - self._ended
        if busy >= len(self._threads) and len(self._threads) < self._size:
            self._spawn()
        self._submitted += 1
        self._queue.put(item)

    def _loop(self) -> None:
        # no lock is taken here: an exception raised in this thread from outside
        # (abandon) between acquiring a lock and entering its block would leave it
        # held. Single dict and set operations are atomic.
        me = threading.current_thread()
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._current[me] = item
            try:
                self._run(item)
            finally:
                self._current.pop(me, None)
                # not atomic across threads: a lost count makes submit start a thread
                # early, never more than ``size``
                self._ended += 1
            if me in self._abandoned:
                return  # a new thread took this one's place

    def abandon(self, match: Callable[[Any], bool], exception: type[BaseException]) -> bool:
        """Give up on the thread running the item that ``match``es: a new thread takes
        its place at once, and ``exception`` is raised in it at its next Python
        instruction (a blocking call such as ``time.sleep`` or a socket read ends
        first). Returns whether such a thread was found."""
        with self._lock:
            found = [(thread, item) for thread, item in list(self._current.items())
                     if match(item) and thread not in self._abandoned]
            if not found:
                return False
            thread, item = found[0]
            self._abandoned.add(thread)
            self._threads.remove(thread)
            self._spawn()
            # still on that item: an abandoned thread takes no other, so it is alive and
            # its id is its own. (If it finished meanwhile, the exception reaches it on
            # its way out, harmlessly; the caller ignores a JobTimeout of another job.)
            if self._current.get(thread) is item and thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                           ctypes.py_object(exception))
        return True

    def shutdown(self, timeout: float) -> list[threading.Thread]:
        """Stop the threads once their current job ends; those still busy after
        ``timeout`` seconds are returned (they are daemons and die with the process)."""
        with self._lock:
            threads = list(self._threads)
            abandoned = list(self._abandoned)
        for _ in threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in threads + abandoned if thread.is_alive()]
