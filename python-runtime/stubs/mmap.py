"""A stand-in for mmap in pubfn's pandas flavour.

WASI has no memory-mapped files, so CPython's mmap module is not built. pandas imports it when
it is imported (for `read_csv(..., memory_map=True)`); opening a mapping raises instead.
"""

ACCESS_DEFAULT, ACCESS_READ, ACCESS_WRITE, ACCESS_COPY = 0, 1, 2, 3
PAGESIZE = ALLOCATIONGRANULARITY = 65536


class mmap:  # noqa: N801 - the stdlib's name
    """Raises: there are no memory-mapped files in the sandbox."""

    def __init__(self, *args, **kwargs):
        raise OSError("mmap: no memory-mapped files in pubfn's WebAssembly sandbox")
