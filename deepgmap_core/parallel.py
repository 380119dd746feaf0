"""Work spread over threads with its results kept in order: numpy, sequence reads and one-hot
encoding release the GIL, so threads use several cores without copying data between processes."""

from collections import deque
from concurrent.futures import ThreadPoolExecutor


def in_order(function, items, threads=1):
    """function(item) for each of `items`, yielded in order; `threads` calls run ahead of the
    result being used, and `items` is drawn only that far ahead (memory stays bounded)."""
    threads = max(threads, 1)
    with ThreadPoolExecutor(threads) as pool:
        upcoming = deque()
        for item in items:
            upcoming.append(pool.submit(function, item))
            if len(upcoming) > threads:
                yield upcoming.popleft().result()
        while upcoming:
            yield upcoming.popleft().result()
