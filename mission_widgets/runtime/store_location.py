"""Where a store lives and whether it may be opened: scoping, privacy and damage checks.

A store holds pickles, and loading a pickle runs code, so a store is private: created 0700
with 0600 files, and refused (like ssh refuses a key others can write) when its directory,
database or sub-directories belong to someone else or are writable by group or others.
A directory that is not a store is never taken over, and a store whose database is missing,
empty or garbage while mission files remain is reported, not silently recreated.

Which store (:func:`describe_store_path`): ``store=`` and ``$MISSION_WIDGETS_STORE`` win;
inside a Jupyter kernel the notebook's own store (``<state>/notebooks/<name>-<hash>``);
otherwise ``<state>/default``, where ``<state>`` is ``$XDG_STATE_HOME/mission_widgets``
(``~/.local/state/mission_widgets``). A bare name (``store="demo"``) is a named store there.
Standard library only: the worker imports this module.
"""

from __future__ import annotations

import os
import stat
import sys

from ..core.errors import MissionError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

DB_NAME = "store.sqlite"
SUBDIRS = {"mission": "missions", "log": "logs", "checkpoint": "checkpoints"}
SUFFIXES = {"mission": ".pkl", "log": ".log", "checkpoint": ".json"}
#: Files SQLite keeps beside the database (checked for privacy like the database).
SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_HEADER = b"SQLite format 3\x00"
REPAIR_HINT = "mission-widgets store repair --store {root}"


class StoreError(MissionError, RuntimeError):
    """The store cannot be opened, read or written (the message names the file and why)."""


class StorePathError(StoreError, ValueError):
    """``store=`` names no usable store directory ("", the working directory, a file, a
    directory that is not a store)."""


# -- which store ---------------------------------------------------------------------------


def state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "mission_widgets")


def notebook_path() -> str | None:
    """The notebook this process is the kernel of, when Jupyter or VS Code says so."""
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        return os.path.abspath(os.path.expanduser(session))
    ipython = sys.modules.get("IPython")  # only when already imported: never import it here
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    namespace = getattr(shell, "user_ns", None) or {}
    vscode = namespace.get("__vsc_ipynb_file__")
    return os.path.abspath(vscode) if isinstance(vscode, str) and vscode else None


def notebook_store_dir(notebook: str) -> str:
    """``<state>/notebooks/<slug>-<hash>``: readable, and distinct per absolute path."""
    import hashlib  # not at module level: the worker never needs it

    stem = os.path.splitext(os.path.basename(notebook))[0]
    slug = "".join(c if c.isalnum() or c in "_.-" else "_" for c in stem).lstrip(".")[:40]
    digest = hashlib.sha256(notebook.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return os.path.join(state_dir(), "notebooks", f"{slug or 'notebook'}-{digest}")


def resolve_root(store: str | os.PathLike[str] | None) -> tuple[str, str]:
    """The store directory (absolute, symlinks resolved) and why it was chosen."""
    if store is None:
        env = os.environ.get("MISSION_WIDGETS_STORE")
        if env:
            text, reason = os.path.expanduser(env), "$MISSION_WIDGETS_STORE"
        elif (notebook := notebook_path()) is not None:
            text, reason = notebook_store_dir(notebook), f"the store of notebook {notebook}"
        else:
            text, reason = os.path.join(state_dir(), "default"), "the default store"
    else:
        text = os.fspath(store)
        if not isinstance(text, str) or not text.strip():
            raise StorePathError(
                f"store={store!r} is not a store: give a directory (or a name), or None "
                "for the default store"
            )
        if os.sep not in text and "/" not in text and not text.startswith((".", "~")):
            text, reason = os.path.join(state_dir(), text), f"the named store {store!r}"
        else:
            text, reason = os.path.expanduser(text), "store= given"
    return os.path.realpath(text), reason


def describe_store_path(store: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """``(path, reason)``: the store ``store`` designates and why (for the panel and CLI)."""
    import pathlib

    root, reason = resolve_root(store)
    return pathlib.Path(root), reason


def resolve_store_path(store: str | os.PathLike[str] | None) -> Path:
    """The store directory ``store`` designates (see the module docstring for the rules)."""
    return describe_store_path(store)[0]


# -- private files -------------------------------------------------------------------------


def open_private(
    path: str | os.PathLike[str], flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
) -> int:
    """Open (creating with mode 0600) and return a file descriptor; a symbolic link at
    ``path`` (planted in a store to make it write elsewhere) is refused (O_NOFOLLOW)."""
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:  # pragma: no cover - a file of someone else's, refused elsewhere
        pass
    return fd


def _who(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_private(path: str, root: str) -> None:
    """Refuse ``path`` (a store directory or file) owned by another user or writable by others."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"mission store {root}: cannot inspect {path}: {exc}") from None
    why = "a store holds pickled missions, and loading one runs its code as you"
    if info.st_uid != os.geteuid():
        raise StoreError(
            f"mission store {root} refused: {path} is owned by {_who(info.st_uid)}, not by you "
            f"({_who(os.geteuid())}); {why}. Use a store of your own (store=...), or, if you "
            f"trust its owner, take it over with `chown -R {_who(os.geteuid()).split()[0]} {root}`."
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(
            f"mission store {root} refused: {path} is writable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); {why}. If nobody else could have "
            f"changed it, fix it with `chmod -R go-w {root}`; otherwise delete the store."
        )


def check_store_privacy(root: str) -> None:
    """The directory, its sub-directories, the database and SQLite's side files."""
    db = os.path.join(root, DB_NAME)
    for path in (
        root,
        *(os.path.join(root, sub) for sub in SUBDIRS.values()),
        db,
        *(db + side for side in SIDE_FILES),
    ):
        check_private(path, root)


def _has_files(path: str) -> int:
    try:
        return sum(1 for entry in os.scandir(path) if entry.is_file())
    except OSError:
        return 0


def mission_file_count(root: str) -> int:
    return sum(_has_files(os.path.join(root, sub)) for sub in SUBDIRS.values())


def prepare_root(root: str, *, create: bool) -> None:
    """Check (and with ``create``, make) the store directory ``root``; raise StoreError when it
    must not be used. Nothing is written before every check has passed."""
    db = os.path.join(root, DB_NAME)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise StorePathError(f"mission store {root} is a file, not a store directory")
    for inside in (db, *(os.path.join(root, sub) for sub in SUBDIRS.values())):
        if os.path.islink(inside):  # the store's files are never reached through a link
            raise StoreError(
                f"mission store {root}: {inside} is a symbolic link; refusing it (a store's "
                f"{DB_NAME} must be a regular file and its folders real directories)"
            )
    exists = os.path.isdir(root)
    is_store = exists and os.path.isfile(db)
    if exists:
        check_store_privacy(root)
    if exists and not is_store:
        if os.path.lexists(db):
            raise StoreError(f"mission store {root}: {db} is not a regular file")
        entries = set(os.listdir(root))
        found = mission_file_count(root)
        if found:
            raise StoreError(
                f"mission store {root} is damaged: {DB_NAME} is missing but {found} mission, "
                f"log or checkpoint files remain. Nothing was changed; rebuild it with "
                f"`{REPAIR_HINT.format(root=root)}`."
            )
        if root == os.path.realpath(os.getcwd()):
            raise StorePathError(
                f"store={root!r} is the working directory, which is not a mission store: "
                "give a directory of its own (e.g. store='missions_store')"
            )
        if entries - set(SUBDIRS.values()):
            raise StorePathError(
                f"{root} is a non-empty directory that is not a mission store (no {DB_NAME}); "
                "refusing to take it over: give a new or empty directory"
            )
    if is_store:
        size = os.path.getsize(db)
        if size == 0 and (found := mission_file_count(root)):
            raise StoreError(
                f"mission store {root} is damaged: {db} is empty (0 bytes) but {found} "
                f"mission, log or checkpoint files remain. Nothing was changed; rebuild it "
                f"with `{REPAIR_HINT.format(root=root)}`."
            )
        if size:
            _check_header(root, db)
        if create:
            for sub in SUBDIRS.values():
                if not os.path.isdir(os.path.join(root, sub)):
                    _make_private_dir(root, os.path.join(root, sub))
        return
    if not create:
        raise StoreError(f"no mission store at {root} (no {DB_NAME})")
    _make_private_dir(root, root)  # new, or an empty directory of ours
    for sub in SUBDIRS.values():
        _make_private_dir(root, os.path.join(root, sub))
    try:
        os.close(open_private(db, os.O_WRONLY | os.O_CREAT))
    except OSError as exc:
        raise StoreError(f"cannot create mission store {root}: {exc}") from None


def _check_header(root: str, db: str) -> None:
    """Garbage in the database file is found before SQLite reads it (a WAL file beside it
    could otherwise hide the damage until the next checkpoint)."""
    try:
        with open(db, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"mission store {root}: cannot read {db}: {exc}") from None
    if header != SQLITE_HEADER:
        raise StoreError(
            f"mission store {root} is damaged: {db} is not an SQLite database (it starts with "
            f"{header[:8]!r}). Nothing was changed; `{REPAIR_HINT.format(root=root)}` moves it "
            "aside and rebuilds the rows from checkpoints and logs."
        )


def _make_private_dir(root: str, path: str) -> None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise StoreError(f"cannot create mission store {root}: {exc}") from None
