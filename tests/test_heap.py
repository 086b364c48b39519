"""The heap's free pages go back to the system (glibc), as the daemon's memory figures need."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from aggregator.heap import give_back_memory

CHILD = """
import sys
from aggregator.heap import give_back_memory
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
blocks = [bytearray(2000) for _ in range(30_000)]  # past pymalloc, below mmap: the C heap
peak = rss()
kept = blocks[::10]  # one block in ten stays: the heap cannot just shrink from its top
blocks.clear()
before = rss()
give_back_memory()
print(peak, before, rss())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_freed_small_blocks_are_given_back_to_the_system() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          check=True)
    peak, before, after = (int(x) for x in done.stdout.split())
    assert before - after > 0.6 * (peak - after)  # kB: most of the ~60 MB freed, which glibc
    assert before - after > 30_000  # had kept until it was asked


def test_it_says_whether_it_could() -> None:
    assert give_back_memory() is (platform.libc_ver()[0] == "glibc")


LARGE = """
import sys
from aggregator.heap import map_large_blocks
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
mapped = sys.argv[1] == "mapped" and map_large_blocks()
first = bytearray(1 << 20)  # a first page of HTML, freed: glibc would raise its threshold
del first
start = rss()
pages, kept = [], []
for _ in range(60):  # pages of a poll, each beside something small that outlives it
    pages.append(bytearray(300_000))
    kept.append(bytearray(700))
pages.clear()
print(int(mapped), rss() - start)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_freed_pages_of_html_go_back_to_the_system_at_once() -> None:
    # glibc's own tunables left out: any of them (Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in
    # the environment of the process that runs it: this test suite's) fixes the threshold too
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def grown(mode: str) -> tuple[int, int]:
        done = subprocess.run([sys.executable, "-c", LARGE, mode], capture_output=True,
                              text=True, check=True, env=env)
        mapped, kib = (int(x) for x in done.stdout.split())
        return mapped, kib

    mapped, kib = grown("mapped")
    assert mapped == 1
    assert kib < 2_000  # of the 17.5 MiB the pages took, nothing is held once they are freed
    assert grown("heap")[1] > 10_000  # glibc's default, what it replaces: the heap keeps them
