"""Cache files: written so that each is either complete or absent (a temporary beside it, then
rename), and read back as a JSON object that a missing or broken file leaves empty."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path, data: bytes | str) -> Path:
    """Write `data` (bytes, or text written with '\\n' line ends) to `path` atomically. The file
    gets the mode any new file gets (0666 less the umask, 0644 usually), not mkstemp's 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


class JsonObjectFile:
    """A JSON object on disk (a cache of measured choices), read as a new dict each call, {}
    where the file is missing, unreadable or not an object. The file is parsed again only when
    its bytes changed (reading them costs well under a millisecond; parsing a cache that has
    seen many shapes, 200 kB, 12 ms here). Bytes, not the file's time and size: another
    process's rewrite within one timestamp tick, of the same size, would otherwise go unseen.
    `where` gives the path at each read (the cache folder may change, as in tests)."""

    def __init__(self, where):
        self.where, self._raw, self._data = where, None, {}

    def read(self) -> dict:
        """The object's records (a new dict; the records themselves are shared: replace, never edit)."""
        try:
            raw = Path(self.where()).read_bytes()
            if raw != self._raw:
                data = json.loads(raw)
                self._raw, self._data = raw, data if isinstance(data, dict) else {}
            return dict(self._data)
        except (OSError, ValueError):
            return {}

    def write(self, data: dict) -> bool:
        """Write the object whole (sorted keys, indented); False where it cannot be written (a
        read-only home only costs a measurement again next time)."""
        path = Path(self.where())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(data, indent=1, sort_keys=True))
            return True
        except OSError:
            return False
