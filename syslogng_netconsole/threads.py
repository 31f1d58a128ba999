"""Helpers for the project's own background threads."""


def name_os_thread(name: str) -> None:
    """Name the calling OS thread (top -H, /proc/PID/task/*/comm: 15 bytes at most);
    Python 3.11's threading names only the Python object."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)     # PR_SET_NAME
    except Exception:
        pass
