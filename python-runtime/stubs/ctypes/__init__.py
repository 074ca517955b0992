"""A stand-in for ctypes in pubfn's pandas flavour.

ctypes calls foreign functions in shared libraries, and a WebAssembly sandbox has neither
dynamic loading nor foreign calls, so CPython's ctypes cannot work here (the runtime leaves
it out). pandas imports it when it is imported, to word Windows errors; numpy's ctypeslib
only on use. This module lets those imports succeed; using anything from it raises.
"""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotImplementedError(
        f"ctypes.{name}: ctypes cannot work in pubfn's WebAssembly sandbox (no shared libraries)")
