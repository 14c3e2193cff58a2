"""How every launched script ends: a collective barrier, the process group destroyed, then ``os._exit``.

Gloo keeps C++ worker threads that can still be joinable while the interpreter finalises; on a loaded
machine one rank then aborts with ``terminate called without an active exception`` after its work is
done and its results are written, and the launcher reports the whole run as failed. Leaving through
``os._exit`` once the streams are flushed skips interpreter finalisation and the static destructors,
so a rank's exit status reflects its work, not the order in which threads are torn down.
"""

from __future__ import annotations

import os
import sys

import torch.distributed as dist


def finish(status: int = 0) -> None:
    """Synchronise the ranks, release the process group and exit without interpreter teardown."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
