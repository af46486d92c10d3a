"""``ncii-client hash PATH...``: fingerprint files and folders locally (specs/hash-output.md).

Every regular file gets MD5 and SHA-256 of its bytes; images (sniffed from the bytes, not the
name) also get PDQ, videos and animated GIFs vPDQ. Output is one line per fingerprint, as text
or JSON lines (``--json``). A file that fails is reported (stderr, and a JSON error line) and the
rest are still hashed; the exit code says whether anything failed.

This module does the file-system work hashing/ refuses to do: walking folders, following
symlinks without looping, never opening FIFOs or devices. It has no network code at all.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, TextIO

from tqdm import tqdm

from client.cli_common import printable
from hashing.digest import digest_stream
from hashing.errors import (
    HashingError,
    LowQualityError,
    MediaTooLargeError,
    UnreadableMediaError,
    UnsupportedMediaError,
)
from hashing.image import hash_image
from hashing.kinds import Kind, sniff
from hashing.pdq import QUALITY_FLOOR, PdqHash
from hashing.vpdq import DEFAULT_SECONDS_PER_HASH, NoVideoStreamError, VpdqFeature, hash_video

__all__ = ["FileError", "Fingerprint", "collect", "hash_file", "register", "run"]

EXIT_OK, EXIT_FAILURE = 0, 1

_HELP = "fingerprint files locally (MD5, SHA-256, PDQ for images, vPDQ for videos)"

_DESCRIPTION = """\
Compute fingerprints of files on this computer. Nothing is sent anywhere.

For every file: MD5 and SHA-256 of its exact bytes (these match only identical copies).
For pictures (JPEG, PNG, WebP, HEIC, GIF, BMP, TIFF): a PDQ hash, which still matches after
resizing or recompression, with a quality score from 0 to 100. Pictures scoring below 50 are
too flat (blank, nearly one colour) to be matched reliably and are marked as such.
For videos (MP4, MOV, WebM, MKV, AVI, animated GIF): a vPDQ hash, one PDQ hash per sampled
frame (one per second by default).

Folders are searched recursively. Hidden files and folders (names starting with '.') are
skipped unless --hidden is given; files you name directly are always hashed.
The type of a file is read from its content, never from its name.
"""

_EPILOG = """\
examples:
  ncii-client hash photo.jpg                     one picture
  ncii-client hash ~/Pictures/private clip.mov   a whole folder and a video
  ncii-client hash --json folder > hashes.jsonl  machine-readable, one JSON object per line
  ncii-client hash --seconds-per-hash 0 clip.mp4 hash every video frame (slower)
  ncii-client hash --fps 2 clip.mp4              two frames per second of video

output (text): one line per fingerprint, "ALGORITHM  HASH  PATH"; problems go to stderr.
(exit status 1 here: at least one file could not be hashed.)
"""


class _Bar(Protocol):
    """The part of a tqdm progress bar this module uses."""

    def write(self, s: str, file: TextIO | None = None) -> None: ...
    def update(self, n: int = 1) -> object: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...
    def close(self) -> None: ...


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One output line: a file's fingerprint by one algorithm."""

    path: str
    kind: Kind
    algorithm: str  # "md5" | "sha256" | "pdq" | "vpdq"
    value: str | PdqHash | list[VpdqFeature]
    quality: int | None = None
    fit: bool | None = None


@dataclass(frozen=True, slots=True)
class FileError:
    """One file (or folder entry) that could not be hashed, with a stable ``code``."""

    path: str
    code: str
    message: str


@dataclass(slots=True)
class Options:
    seconds_per_hash: float = DEFAULT_SECONDS_PER_HASH
    hidden: bool = False
    exact: bool = False


@dataclass(slots=True)
class _Walk:
    files: list[str] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    skipped_hidden: int = 0


# -- walking -------------------------------------------------------------------------------


def _os_error(path: str, exc: OSError) -> FileError:
    code = {
        errno.ENOENT: "not-found",
        errno.EACCES: "permission-denied",
        errno.EPERM: "permission-denied",
        errno.ELOOP: "symlink-loop",
        errno.ENAMETOOLONG: "name-too-long",
        errno.ENOTDIR: "not-found",
    }.get(exc.errno or 0, "io-error")
    advice = {
        "not-found": "no such file or folder (or a broken symbolic link)",
        "permission-denied": "permission denied: you are not allowed to read it",
        "symlink-loop": "symbolic link loop: the link points back to itself",
        "name-too-long": "the file name is too long",
    }.get(code, f"could not be read ({exc.strerror or 'input/output error'})")
    return FileError(path, code, advice)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def collect(paths: Sequence[str], *, hidden: bool = False) -> _Walk:
    """Expand ``paths`` into regular files (sorted per folder) and the errors met on the way.

    Symbolic links are followed; a folder reached twice (a link to an ancestor) is walked once.
    """
    walk = _Walk()
    visited: set[tuple[int, int]] = set()
    for path in paths:
        _visit(path, walk, visited, hidden, top=True)
    return walk


def _visit(
    path: str, walk: _Walk, visited: set[tuple[int, int]], hidden: bool, *, top: bool
) -> None:
    try:
        info = os.stat(path)
    except OSError as exc:
        walk.errors.append(_os_error(path, exc))
        return
    except ValueError:  # an embedded NUL byte
        walk.errors.append(FileError(path, "not-found", "the file name is not valid"))
        return
    if stat.S_ISREG(info.st_mode):
        walk.files.append(path)
    elif stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if key in visited:
            return
        visited.add(key)
        try:
            with os.scandir(path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            walk.errors.append(_os_error(path, exc))
            return
        for name in names:
            if _is_hidden(name) and not hidden:
                walk.skipped_hidden += 1
                continue
            _visit(os.path.join(path, name), walk, visited, hidden, top=False)
    else:
        walk.errors.append(
            FileError(path, "not-a-regular-file", "not a regular file (a pipe, socket or device)")
        )


# -- hashing one file ------------------------------------------------------------------------


def _open_regular(path: str) -> BinaryIO:
    # O_NONBLOCK: if the path was swapped for a FIFO after the walk, opening does not block.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _media_error(path: str, exc: HashingError, kind: Kind) -> FileError:
    # hashing/ messages are already written for people and never hold hash values or pixels.
    what = "picture" if kind is Kind.IMAGE else "video"
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, MediaTooLargeError):
        return FileError(path, "too-large", f"{what} too large to fingerprint: {reason}")
    if isinstance(exc, UnsupportedMediaError):
        return FileError(path, "unsupported-media", f"{what} not supported: {reason}")
    if isinstance(exc, UnreadableMediaError):
        return FileError(path, "unreadable-media", f"{what} damaged or incomplete: {reason}")
    if isinstance(exc, LowQualityError):
        return FileError(path, "low-quality", f"{what} too flat to fingerprint: {reason}")
    return FileError(path, "hashing-failed", f"{what} could not be fingerprinted: {reason}")


def hash_file(path: str, options: Options) -> tuple[list[Fingerprint], FileError | None]:
    """All fingerprints of one regular file, and the error that stopped the rest (if any).

    MD5 and SHA-256 come first, so they are reported even when the picture or video inside
    cannot be decoded.
    """
    out: list[Fingerprint] = []
    try:
        with _open_regular(path) as stream:
            verdict = sniff(stream)
            stream.seek(0)
            digests = digest_stream(stream)
            kind = verdict.kind
            out.append(Fingerprint(path, kind, "md5", digests.md5_hex))
            out.append(Fingerprint(path, kind, "sha256", digests.sha256_hex))
            stream.seek(0)
            if kind is Kind.IMAGE:
                pdq = hash_image(stream, fast_decode=not options.exact)
                fit = pdq.quality >= QUALITY_FLOOR
                out.append(Fingerprint(path, kind, "pdq", pdq, pdq.quality, fit))
            elif kind is Kind.VIDEO:
                try:
                    features = hash_video(stream, seconds_per_hash=options.seconds_per_hash)
                except NoVideoStreamError:
                    # An audio-only MP4/WebM/MKV is just a file: its digests say all there is.
                    return [
                        Fingerprint(f.path, Kind.OTHER, f.algorithm, f.value) for f in out
                    ], None
                fit = any(f.quality >= QUALITY_FLOOR for f in features)
                out.append(Fingerprint(path, kind, "vpdq", features, None, fit))
    except OSError as exc:
        return out, _os_error(path, exc)
    except HashingError as exc:
        return out, _media_error(path, exc, out[0].kind if out else Kind.OTHER)
    return out, None


# -- output ----------------------------------------------------------------------------------


def _json_value(fp: Fingerprint) -> Any:
    if isinstance(fp.value, PdqHash):
        return fp.value.hex()
    if isinstance(fp.value, list):
        return [
            {
                "frame": f.frame_number,
                "quality": f.quality,
                "hash": f.hash.hex(),
                "timestamp": round(f.timestamp, 3),
            }
            for f in fp.value
        ]
    return fp.value


def format_json(fp: Fingerprint) -> str:
    """One JSON line for a fingerprint (specs/hash-output.md, section 3)."""
    record: dict[str, Any] = {
        "path": fp.path,
        "kind": fp.kind.value,
        "algorithm": fp.algorithm,
        "hash": _json_value(fp),
        "quality": fp.quality,
    }
    if fp.fit is not None:
        record["fit"] = fp.fit
    return json.dumps(record, ensure_ascii=True, separators=(", ", ": "))


def format_json_error(error: FileError) -> str:
    """One JSON line for a file that failed (specs/hash-output.md, section 4)."""
    record = {"path": error.path, "error": {"code": error.code, "message": error.message}}
    return json.dumps(record, ensure_ascii=True, separators=(", ", ": "))


def format_text(fp: Fingerprint) -> str:
    """One human line for a fingerprint (specs/hash-output.md, section 2)."""
    path = printable(fp.path)
    if isinstance(fp.value, PdqHash):
        note = f"quality {fp.quality}" + ("" if fp.fit else ", too flat: not fit for matching")
        return f"{fp.algorithm:<6}  {fp.value.hex()}  {path}  ({note})"
    if isinstance(fp.value, list):
        fit = sum(1 for f in fp.value if f.quality >= QUALITY_FLOOR)
        note = f"{len(fp.value)} frames, {fit} fit for matching"
        if not fp.fit:
            note += ": too flat, not fit for matching"
        return f"{fp.algorithm:<6}  {'[' + note + ']':<64}  {path}"
    return f"{fp.algorithm:<6}  {fp.value:<64}  {path}"


def format_text_error(error: FileError) -> str:
    return f"ncii-client hash: {printable(error.path)}: {error.message} [{error.code}]"


class _Printer:
    def __init__(self, as_json: bool, out: TextIO, err: TextIO, bar: _Bar | None) -> None:
        self.as_json, self.out, self.err, self.bar = as_json, out, err, bar

    def _line(self, text: str, stream: TextIO) -> None:
        if self.bar is not None:
            self.bar.write(text, file=stream)
        else:
            print(text, file=stream)
        stream.flush()

    def fingerprint(self, fp: Fingerprint) -> None:
        self._line(format_json(fp) if self.as_json else format_text(fp), self.out)

    def error(self, error: FileError) -> None:
        self._line(format_text_error(error), self.err)
        if self.as_json:
            self._line(format_json_error(error), self.out)


# -- the command -----------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and value < 1e6):
        raise argparse.ArgumentTypeError("must be 0 (every frame) or a positive number of seconds")
    return value


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and value < 1e6):
        raise argparse.ArgumentTypeError("must be a positive number of frames per second")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hash`` to the ``ncii-client`` parser."""
    parser = subparsers.add_parser(
        "hash",
        help=_HELP,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to hash")
    parser.add_argument(
        "--json", action="store_true", help="print JSON lines instead of text (one per hash)"
    )
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument(
        "--seconds-per-hash",
        type=_seconds,
        default=DEFAULT_SECONDS_PER_HASH,
        metavar="S",
        help="video: hash one frame every S seconds (default 1; 0 = every frame)",
    )
    rate.add_argument(
        "--fps",
        type=_fps,
        metavar="N",
        help="video: hash N frames per second (same as --seconds-per-hash 1/N)",
    )
    parser.add_argument(
        "--hidden", action="store_true", help="also hash hidden files and folders inside folders"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="decode large JPEGs in full (bit-exact with Meta's reference; slower). By default "
        "only their luma is decoded, which stays within 2 bits of the reference (specs/pdq.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Hash every file under ``args.paths``; 0 if all succeeded, 1 if any failed."""
    seconds = 1.0 / args.fps if args.fps else args.seconds_per_hash
    options = Options(seconds_per_hash=seconds, hidden=args.hidden, exact=args.exact)
    return hash_paths(args.paths, options, as_json=args.json, progress=not args.no_progress)


def hash_paths(
    paths: Sequence[str],
    options: Options,
    *,
    as_json: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The command's body, with its streams as parameters."""
    out = out or sys.stdout
    err = err or sys.stderr
    walk = collect(paths, hidden=options.hidden)
    show_bar = progress and err.isatty() and len(walk.files) > 1
    bar: _Bar | None = (
        tqdm(total=len(walk.files), unit="file", file=err, leave=False) if show_bar else None
    )
    printer = _Printer(as_json, out, err, bar)
    failed = bool(walk.errors)
    for error in walk.errors:
        printer.error(error)
    for fingerprints, problem in _hash_all(walk.files, options, bar):
        for fp in fingerprints:
            printer.fingerprint(fp)
        if problem is not None:
            failed = True
            printer.error(problem)
    if bar is not None:
        bar.close()
    if walk.skipped_hidden:
        print(
            f"ncii-client hash: skipped {walk.skipped_hidden} hidden file(s) or folder(s);"
            " use --hidden to include them",
            file=err,
        )
    return EXIT_FAILURE if failed else EXIT_OK


def _hash_all(
    files: list[str], options: Options, bar: _Bar | None
) -> Iterator[tuple[list[Fingerprint], FileError | None]]:
    for path in files:
        if bar is not None:
            bar.set_postfix_str(os.path.basename(path)[-30:], refresh=False)
        yield hash_file(path, options)
        if bar is not None:
            bar.update(1)
