"""The one rule for a path inside the output tree (spec outputs, lock entries, manifests).

A spec, a lock and a manifest all come from pull requests, and each names files that
recraft-build will write or delete, so each goes through the same check, here:

* :func:`relative_path_problem`: a clean relative posix path (not empty, no
  backslash, not absolute or drive-lettered, no ``..``, ``.`` or empty part, none of
  ``<>:"|?*`` or control characters, which no file on Windows may hold).
* :func:`output_path_problem`: that, plus names no *output file* may have: the
  tool's temporary-file prefix (:data:`TEMP_PREFIX`: such a file would be swept
  away as a killed build's leftover) and Windows device names (``CON``, ``NUL``,
  ``COM1``... with any extension), which cannot be created there.
* :func:`is_output_path`: the same answer as a bool, for the lock's fast reader.

Pure string work: nothing here touches the disk (symlinks are the writer's check,
:mod:`recraft_build.engine.safefs`).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["TEMP_PREFIX", "is_output_path", "output_path_problem", "relative_path_problem"]

#: Names starting with this are the tool's temporary files (written, then renamed).
TEMP_PREFIX = ".rbtmp-"

_BAD_PATH_CHARS = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
# Windows device names: a file or folder called so (with any extension, in any case)
# cannot be created. Windows also strips trailing spaces before the extension.
_DEVICE_NAME = re.compile(r"(?:^|/)((CON|PRN|AUX|NUL|COM[0-9\u00b9\u00b2\u00b3]|"
                          r"LPT[0-9\u00b9\u00b2\u00b3]) *)(\.[^/]*)?(?:/|$)", re.IGNORECASE)


def relative_path_problem(path: str) -> tuple[str, str] | None:
    """Why ``path`` is not a clean relative posix path, as (problem, hint), or None."""
    if not path:
        return "is empty", "write a file path like icons/sword.png"
    if "\\" in path:
        return "contains a backslash", "use / between folders"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "is absolute", "write it relative to the output folder"
    if _BAD_PATH_CHARS.search(path):
        return ('contains a character that is not allowed in file names (<>:"|?* or a '
                "control character)", "use letters, digits, - _ . and /")
    parts = path.split("/")
    if ".." in parts:
        return "contains '..'", "outputs may not leave the output folder"
    if "" in parts:
        return "has an empty folder name (//, or a trailing /)", "remove the extra /"
    if "." in parts:
        return "contains a '.' folder", "remove the './'"
    return None


def output_path_problem(path: str) -> tuple[str, str] | None:
    """:func:`relative_path_problem`, plus names no output may have, as (problem, hint)."""
    problem = relative_path_problem(path)
    if problem is not None:
        return problem
    if TEMP_PREFIX in path:
        for part in path.split("/"):
            if part.startswith(TEMP_PREFIX):
                return (f"has a name starting '{TEMP_PREFIX}' ('{part}'), which "
                        "recraft-build keeps for its temporary files", "rename it")
    device = _DEVICE_NAME.search(path)
    if device is not None:
        part = device.group(1) + (device.group(3) or "")
        return (f"uses '{part}', a device name on Windows (CON, PRN, AUX, NUL, COM0-9, "
                "LPT0-9, with any extension), where no file can have it",
                f"rename it, e.g. '{device.group(2)}-1{device.group(3) or ''}'")
    return None


def is_output_path(value: Any) -> bool:
    """True when ``value`` is a string :func:`output_path_problem` accepts."""
    return type(value) is str and output_path_problem(value) is None
