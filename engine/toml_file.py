"""The one TOML reader of the engine: problem files, sweep files, presets and the examples
catalog, with the same one-line errors (ProblemError naming the file) for every failure."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ProblemError

MAX_TOML_BYTES = 16 << 20     # a problem file is a few kB; a bigger one is not a problem file


def read_toml(path: str | Path, what: str) -> dict:
    """A TOML file as a dict; a missing or malformed file raises ProblemError(what, path, ...)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        size = os.path.getsize(path)
        if size > MAX_TOML_BYTES:
            raise ProblemError(what, str(path), f"a TOML file of at most {MAX_TOML_BYTES >> 20} MB "
                                                f"(this one has {size} bytes)")
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8")
        if "\x00" in text:
            raise ProblemError(what, str(path), "a text (TOML) file (this one holds NUL bytes: a binary file?)")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ProblemError(what, str(path), "an existing TOML file") from None
    except IsADirectoryError:
        raise ProblemError(what, str(path), "a TOML file, not a folder") from None
    except UnicodeDecodeError as e:
        raise ProblemError(what, str(path), f"a UTF-8 text (TOML) file (byte {e.start} is not UTF-8: "
                                            f"a binary file?)") from None
    except tomllib.TOMLDecodeError as e:
        raise ProblemError(what, str(path), f"valid TOML ({e})") from None
    except RecursionError:   # arrays or tables nested thousands deep: no problem file needs that
        raise ProblemError(what, str(path), "a TOML file without arrays or tables nested hundreds deep") from None
    except OSError as e:
        raise ProblemError(what, str(path), f"a readable TOML file ({e.strerror or e})") from None
