"""Ctrl-C that stops a training run cleanly at the end of the current step."""

from __future__ import annotations

import signal
import sys

import torch
import torch.distributed as dist


class GracefulStop:
    """Within this context the first SIGINT (Ctrl-C) or SIGTERM only sets a flag; a second SIGINT
    interrupts at once. ``requested()`` agrees across torchrun ranks, so all stop at the same step."""

    def __enter__(self) -> GracefulStop:
        self._flag = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: keep the default behaviour
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self._flag and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._flag = True
        print("\nstopping after this step (Ctrl-C again to abort at once)", file=sys.stderr)

    def requested(self) -> bool:
        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([float(self._flag)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return bool(flag.item())
        return self._flag

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
