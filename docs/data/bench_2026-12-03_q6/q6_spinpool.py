"""Prototype: a kernel pool whose workers spin (in numba, without the GIL) before sleeping."""
import ctypes, threading, time
import numpy as np
from numba import njit

_libc = ctypes.CDLL(None)
_sched_yield = _libc.sched_yield
_sched_yield.restype = ctypes.c_int
_sched_yield.argtypes = []

@njit(nogil=True)
def _now_ns_dummy():
    return 0

@njit(nogil=True)
def spin_until_set(flags, i, max_spins):
    """Spin until flags[i] != 0 or max_spins rounds; returns flags[i]."""
    for _ in range(max_spins):
        v = flags[i]
        if v != 0:
            return v
        _sched_yield()
    return flags[i]

class SpinPool:
    def __init__(self, workers, spin_rounds=20000):
        self.n = workers
        self.spin = spin_rounds
        self.post = np.zeros(workers, dtype=np.int64)   # 1: a task waits for worker i
        self.done = np.zeros(workers, dtype=np.int64)   # 1: worker i finished its task
        self.tasks = [None] * workers
        self.results = [None] * workers
        self.cond = [threading.Condition() for _ in range(workers)]
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True, name=f"spin-{i}") for i in range(workers)]
        for t in self.threads:
            t.start()

    def _loop(self, i):
        post, cond = self.post, self.cond[i]
        while True:
            if spin_until_set(post, i, self.spin) == 0:
                with cond:
                    while post[i] == 0:
                        cond.wait()
            fn = self.tasks[i]
            post[i] = 0
            try:
                self.results[i] = (True, fn())
            except BaseException as e:  # noqa
                self.results[i] = (False, e)
            self.done[i] = 1

    def run(self, tasks):
        k = len(tasks) - 1
        for i in range(k):
            self.tasks[i] = tasks[i + 1]
            self.done[i] = 0
            self.post[i] = 1
            with self.cond[i]:
                self.cond[i].notify()
        first = tasks[0]()
        out = [first]
        for i in range(k):
            if spin_until_set(self.done, i, self.spin) == 0:
                while self.done[i] == 0:
                    time.sleep(0)  # fallback (prototype)
            ok, r = self.results[i]
            if not ok:
                raise r
            out.append(r)
        return out
