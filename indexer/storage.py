"""Where an index lives, defined once: a local folder or an object-store URI (``s3://bucket/prefix``; ``gs://`` and
``az://`` as LanceDB has them), with the storage options that reach it, and the few small objects semcode itself
reads and writes there (the marker, ``indexer/identity.py``). LanceDB reaches the same place by the same URI and
options (``indexer/store.py``).

Credentials and endpoint come the way the ecosystem has them: LanceDB storage options (``aws_access_key_id``,
``aws_secret_access_key``, ``aws_session_token``, ``aws_endpoint``, ``aws_region``, ``allow_http``, ...; from
``Settings.storage_options`` or the config file's ``[storage]`` table), else the environment LanceDB reads
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT``,
``AWS_REGION`` or ``AWS_DEFAULT_REGION``, ``AWS_ALLOW_HTTP``). The small-object side uses ``pyarrow.fs`` (LanceDB
brings pyarrow), which does not read all of those names itself, so ``_s3_args`` resolves them here the way LanceDB
does: both sides reach the same bucket with the same credentials.

Writes of a small object are one PUT of the whole object (atomic on S3, GCS and Azure: a reader sees the old or the
new object, never a part); a local one is written to a temporary file and renamed. Read-modify-write of the marker is
not guarded against a second writer (the last PUT wins): one writer per index is the design (``semcode.Engine``).

Nothing secret is put in a message: ``Location``'s repr leaves its options out, a URI carrying credentials
(``s3://KEY:SECRET@bucket``) is refused without being echoed, and ``describe`` turns a storage error into its cause
with every secret value scrubbed.

No heavy imports: ``pyarrow.fs`` is imported when a remote location is first touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from indexer.errors import StoreError

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

SCHEMES = ("s3", "s3+ddb", "gs", "az")  # the object stores LanceDB reaches by URI
CONNECT_TIMEOUT_S = 5.0  # small-object requests: a wrong endpoint fails in seconds, not minutes
REQUEST_TIMEOUT_S = 30.0
ATTEMPTS = 2
# option names (lower case) whose values are secret; "*_key_id" is not
_SECRET = re.compile(r"secret|token|password|sas|credential|(^|_)key$")
# a local index folder and the files semcode writes in it: this user's only (other users could read every chunk)
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN")


def is_uri(where: str | os.PathLike[str] | Location) -> bool:
    """Whether `where` names an object-store location (``scheme://...``) rather than a local folder."""
    if isinstance(where, Location):
        return where.remote
    return isinstance(where, str) and "://" in where


def location(where: str | os.PathLike[str] | Location, options: Mapping[str, str] | None = None) -> Location:
    """The location of an index: a local folder (as given) or a normalised URI (lower-case scheme, no trailing
    ``/``). ``options``: LanceDB storage options (see the module docstring); unused for a local folder. Raises
    StoreError for a scheme LanceDB does not reach or a URI that carries credentials."""
    if isinstance(where, Location):
        return where if options is None else Location(where.uri, dict(options))
    text = os.fspath(where)
    if "://" not in text:
        return Location(text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:  # user:password@bucket: never echoed
        shown = f"{scheme}://...@{bucket.rpartition('@')[2]}" if "@" in bucket else f"{scheme}://..."
        raise StoreError(
            f"{shown}: put credentials in the environment or the [storage] table of the config file, not in the "
            "index URI"
        )
    if scheme not in SCHEMES:
        raise StoreError(
            f"{text}: not a supported index location (a local folder, or {', '.join(s + '://' for s in SCHEMES)})"
        )
    if not bucket:
        raise StoreError(f"{text}: the URI names no bucket ({scheme}://BUCKET/PREFIX)")
    prefix = "/".join(p for p in prefix.split("/") if p)
    return Location(f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else ""), dict(options or {}))


def canonical(where: str) -> str:
    """`where` as every front door should key it: a URI normalised (``location``), a local path as given. Never
    raises: a URI ``location`` refuses is returned as given, and refused where it is opened."""
    try:
        return location(where).uri if is_uri(where) else where
    except StoreError:
        return where


class Location:
    """An index location: ``uri`` is a local path (as given) or a normalised object-store URI; ``options`` are the
    LanceDB storage options that reach it (never shown: secrets). Immutable; equal when the URIs are. (A plain class,
    not a dataclass: the CLI's warm path imports this module, and ``dataclasses`` costs it 10 ms.)"""

    __slots__ = ("options", "uri")
    uri: str
    options: Mapping[str, str]

    def __init__(self, uri: str, options: Mapping[str, str] | None = None) -> None:
        object.__setattr__(self, "uri", uri)
        object.__setattr__(self, "options", {} if options is None else options)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Location is immutable: cannot set {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Location(uri={self.uri!r})"

    def __reduce__(self) -> tuple[type[Location], tuple[str, Mapping[str, str]]]:  # to Ray's workers
        return Location, (self.uri, self.options)

    def __str__(self) -> str:
        return self.uri

    @property
    def remote(self) -> bool:
        return "://" in self.uri

    @property
    def root(self) -> Path | str:
        """A local folder as a Path, a URI as the string (``Path`` would fold its ``//``)."""
        return self.uri if self.remote else Path(self.uri)

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0] if self.remote else "file"

    def storage_options(self) -> dict[str, str] | None:
        """What LanceDB's ``connect(..., storage_options=...)`` takes (None: its defaults and the environment)."""
        return dict(self.options) if self.options else None

    # -- small objects ------------------------------------------------------------------------------------------

    def read(self, name: str) -> bytes | None:
        """The object (file) `name` under this location, or None when there is none."""
        if not self.remote:
            try:
                return (Path(self.uri) / name).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                return None
        fs, base = self._fs()
        with self._errors(f"read {name}"):
            try:
                with fs.open_input_stream(f"{base}/{name}") as f:
                    data: bytes = f.read()
                    return data
            except FileNotFoundError:
                return None

    def write(self, name: str, data: bytes) -> None:
        """Write the object `name` whole: atomically (a reader sees the old or the new bytes, never a part)."""
        if not self.remote:
            with private_file(Path(self.uri) / name) as f:
                f.write(data)
            return
        fs, base = self._fs()
        with self._errors(f"write {name}"), fs.open_output_stream(f"{base}/{name}") as f:
            f.write(data)

    def make_dir(self) -> None:
        """Create a local folder, and any missing folder above it, private to this user (``PRIVATE_DIR``, whatever
        the umask): an index holds every chunk's text, and nothing below a 0700 folder is reachable by other users,
        so the files LanceDB writes there with the umask's mode stay private too. (Setting the umask instead would
        change it for every thread of the process.) An object store: nothing to create."""
        if self.remote:
            return
        missing = []
        folder = Path(os.path.abspath(self.uri))
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            try:
                os.mkdir(folder, PRIVATE_DIR)
            except FileExistsError:
                continue  # made meanwhile by someone else: theirs to set
            os.chmod(folder, PRIVATE_DIR)

    def make_private(self) -> str | None:
        """Make a local folder that other users can read private (its group and other permissions removed) when this
        user owns it (an index made by an older semcode, or under a loose umask). Returns a one-line warning for one
        other users can read that this user cannot fix (owned by another user), else None. An object store: None
        (its access is the bucket's policy)."""
        if self.remote:
            return None
        try:
            st = os.stat(self.uri)
        except OSError:
            return None
        if not st.st_mode & 0o077:
            return None
        if st.st_uid == os.geteuid():
            os.chmod(self.uri, stat.S_IMODE(st.st_mode) & PRIVATE_DIR)  # (a folder made read-only stays so)
            return None
        return (
            f"{self.uri}: other users can read this index (mode {stat.S_IMODE(st.st_mode):04o}, owned by "
            f"{user_name(st.st_uid)}); its owner can make it private with `chmod 700 {self.uri}`"
        )

    def exists(self) -> bool:
        """Whether anything is at this location (a folder, a file, or any object under the prefix)."""
        if not self.remote:
            return Path(self.uri).exists()
        self.check()
        from pyarrow.fs import FileType

        fs, base = self._fs()
        with self._errors("look at the index"):
            return bool(fs.get_file_info(base).type != FileType.NotFound)

    def entries(self) -> list[str]:
        """Names directly under this location ([] when there is nothing)."""
        if not self.remote:
            folder = Path(self.uri)
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        from pyarrow.fs import FileSelector

        fs, base = self._fs()
        with self._errors("list the index"):
            infos = fs.get_file_info(FileSelector(base, allow_not_found=True, recursive=False))
        return sorted(i.base_name for i in infos)

    def check(self) -> None:
        """A remote location's bucket exists and these credentials may see it (StoreError naming the cause)."""
        if not self.remote:
            return
        from pyarrow.fs import FileType

        fs, base = self._fs()
        bucket = base.split("/", 1)[0]
        with self._errors("reach the bucket"):
            missing = fs.get_file_info(bucket).type == FileType.NotFound
        if missing:
            raise StoreError(f"{self.uri}: the bucket {bucket!r} does not exist (create it first, or check the URI)")

    def size(self) -> int:
        """Bytes stored at this location (every file or object under it)."""
        if not self.remote:
            total = 0
            for dirpath, _dirs, files in os.walk(self.uri):
                for name in files:
                    with contextlib.suppress(OSError):  # removed while we walked (a concurrent cleanup)
                        total += os.lstat(os.path.join(dirpath, name)).st_size
            return total
        from pyarrow.fs import FileSelector, FileType

        fs, base = self._fs()
        with self._errors("measure the index"):
            infos = fs.get_file_info(FileSelector(base, allow_not_found=True, recursive=True))
        return sum(i.size or 0 for i in infos if i.type == FileType.File)

    def files(self, under: str = "", *, recursive: bool = True) -> dict[str, tuple[int, int]]:
        """Every file or object below this location (or below its `under` folder; only the top level's with
        `recursive` False): path relative to this location -> (size, mtime in ns). A local folder or an object
        store alike ({} when there is nothing)."""
        from pyarrow.fs import FileSelector, FileType, LocalFileSystem

        fs, base = (LocalFileSystem(), os.path.abspath(self.uri)) if not self.remote else self._fs()
        start = f"{base}/{under}".rstrip("/") if under else base
        with self._errors("list the index"):
            infos = fs.get_file_info(FileSelector(start, allow_not_found=True, recursive=recursive))
        out = {}
        for info in infos:
            if info.type == FileType.File:
                mtime = info.mtime_ns if info.mtime_ns is not None else 0
                out[info.path[len(base) :].lstrip("/")] = (int(info.size or 0), int(mtime))
        return out

    def download(self, name: str, dest: Path) -> int:
        """Copy the object `name` under this location to the local file `dest` (written whole: a temporary file,
        then renamed; private to this user). Returns the bytes copied."""
        fs, base = self._fs()
        copied = 0
        with self._errors(f"read {name}"), fs.open_input_stream(f"{base}/{name}") as src, private_file(dest) as out:
            while block := src.read(8 << 20):
                out.write(block)
                copied += len(block)
        return copied

    def remove(self) -> None:
        """Delete everything at this location (callers check first that it is an index: ``identity.delete_index``)."""
        if not self.remote:
            import shutil

            shutil.rmtree(self.uri)
            return
        fs, base = self._fs()
        with self._errors("delete the index"), contextlib.suppress(FileNotFoundError):
            fs.delete_dir(base)

    # -- the remote side ----------------------------------------------------------------------------------------

    def _fs(self) -> tuple[FileSystem, str]:
        """(a pyarrow filesystem for this location's store, the bucket/prefix path in it)."""
        from datetime import timedelta

        import pyarrow.fs as pafs

        base = self.uri.split("://", 1)[1]
        with self._errors("connect to the object store"):
            if self.scheme in ("s3", "s3+ddb"):
                return pafs.S3FileSystem(**_s3_args(self.options)), base
            if self.scheme == "gs":  # credentials: GOOGLE_APPLICATION_CREDENTIALS, as LanceDB
                return pafs.GcsFileSystem(retry_time_limit=timedelta(seconds=2 * CONNECT_TIMEOUT_S)), base
            return pafs.AzureFileSystem(**_azure_args(self.options)), base

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (StoreError, FileNotFoundError):
            raise
        except Exception as e:
            cause = describe(e, self.options, s3=self.scheme.startswith("s3"))
            raise StoreError(f"{self.uri}: cannot {doing} ({cause})") from e


@contextlib.contextmanager
def private_file(dest: Path) -> Iterator[BinaryIO]:
    """A local file written whole: the block writes a temporary file (mode ``PRIVATE_FILE`` whatever the umask, never
    through a symlink), renamed to `dest` when the block ends without an error, so a reader sees the old or the new
    bytes, never a part."""
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), PRIVATE_FILE)  # whatever the umask, and a leftover tmp's old mode
            yield f
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # (a failed write's leftover; gone already after the rename)


def user_name(uid: int) -> str:
    """The login name of a user id (for messages), or "uid N"."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _option(options: Mapping[str, str], *names: str, env: tuple[str, ...] = ()) -> str | None:
    lowered = {k.lower(): v for k, v in options.items()}
    for name in names:
        if lowered.get(name):
            return str(lowered[name])
    for name in env:
        if os.environ.get(name):
            return os.environ[name]
    return None


def endpoint(options: Mapping[str, str]) -> str | None:
    """The S3 endpoint URL a location reaches (None: AWS itself), as LanceDB resolves it."""
    names = ("aws_endpoint", "aws_endpoint_url", "endpoint", "endpoint_url")
    return _option(options, *names, env=("AWS_ENDPOINT_URL", "AWS_ENDPOINT"))


def _s3_args(options: Mapping[str, str]) -> dict[str, Any]:
    """``pyarrow.fs.S3FileSystem`` arguments from LanceDB storage options, then the environment LanceDB reads."""
    from pyarrow.fs import AwsStandardS3RetryStrategy

    args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "request_timeout": REQUEST_TIMEOUT_S,
        "retry_strategy": AwsStandardS3RetryStrategy(max_attempts=ATTEMPTS),
    }
    key = _option(options, "aws_access_key_id", "access_key_id")
    secret = _option(options, "aws_secret_access_key", "secret_access_key")
    if key and secret:
        token = _option(options, "aws_session_token", "session_token", "token")
        args |= {"access_key": key, "secret_key": secret} | ({"session_token": token} if token else {})
    region = _option(options, "aws_region", "region", env=("AWS_REGION", "AWS_DEFAULT_REGION"))
    if region:
        args["region"] = region
    url = endpoint(options)
    if url:
        scheme, sep, host = url.partition("://")
        args["endpoint_override"] = host.rstrip("/") if sep else url
        args["scheme"] = scheme if sep else "https"
    return args


def _azure_args(options: Mapping[str, str]) -> dict[str, Any]:
    name = _option(options, "azure_storage_account_name", "account_name", env=("AZURE_STORAGE_ACCOUNT_NAME",))
    if not name:
        raise StoreError("az:// needs the storage account name (AZURE_STORAGE_ACCOUNT_NAME or [storage] account_name)")
    args: dict[str, Any] = {"account_name": name}
    account_key = _option(options, "azure_storage_account_key", "account_key", env=("AZURE_STORAGE_ACCOUNT_KEY",))
    if account_key:
        args["account_key"] = account_key
    return args


_S3_CAUSES = {
    "NoSuchBucket": "the bucket does not exist",
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "InvalidAccessKeyId": "the access key id is not known to the storage service (check the credentials)",
    "INVALID_ACCESS_KEY_ID": "the access key id is not known to the storage service (check the credentials)",
    "SignatureDoesNotMatch": "the secret access key does not match the key id (check the credentials)",
    "SIGNATURE_DOES_NOT_MATCH": "the secret access key does not match the key id (check the credentials)",
    "AccessDenied": "access denied (check the credentials and the bucket's policy)",
    "ACCESS_DENIED": "access denied (check the credentials and the bucket's policy)",
    "ExpiredToken": "the session token has expired",
    "EXPIRED_TOKEN": "the session token has expired",
}


def describe(error: BaseException, options: Mapping[str, str] | None = None, *, s3: bool = True) -> str:
    """A storage error's cause in one line (``storage_cause``), else the error's first line, with every secret value
    of `options` and of the environment scrubbed."""
    cause = storage_cause(error, options, s3=s3)
    if cause is None:
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return scrub(cause, options)


def storage_cause(error: BaseException, options: Mapping[str, str] | None = None, *, s3: bool = True) -> str | None:
    """The cause of an object-store failure in a few words (an S3 error code, a refused connection, an unknown
    host, a timeout), or None when `error` is not recognisably one. `s3`: name the S3 endpoint in the cause."""
    text = str(error)
    found = re.search(r"<Code>([^<]+)</Code>", text) or re.search(r"AWS Error ([A-Z_]+) during", text)
    url = (endpoint(options or {}) if s3 else None) or "the storage endpoint"
    if found and found[1] in _S3_CAUSES:
        return _S3_CAUSES[found[1]]
    if re.search(r"[Cc]onnection refused|ConnectionRefused|Could not connect|tcp connect error", text):
        return f"connection refused by {url}"
    if re.search(r"[Cc]ould not resolve|dns error|Name or service not known|failed to lookup", text):
        return f"the host of {url} cannot be resolved"
    if re.search(r"[Tt]imed out|TimedOut|[Tt]imeout", text):
        return f"{url} did not answer in time"
    gone = re.search(r"Not found: ([^\s,]+)|NoSuchKey|NOT_FOUND|No such file or directory", text)
    if gone:  # the index's objects vanished under a run or a search (another process deleted or moved them)
        table = re.search(r"([\w.-]+\.lance)\b", gone[1] or "") if gone.lastindex else None
        what = f"its table {table[1]}" if table else "part of the index"
        return f"{what} is missing from the object store (deleted or moved while in use; semcode index builds it again)"
    if found:
        message = re.search(r"<Message>([^<]*)</Message>", text) or re.search(r"operation: ([^\n(]*)", text)
        return scrub(f"{found[1]}" + (f": {message[1].strip()}" if message and message[1].strip() else ""), options)
    return None


def scrub(text: str, options: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value (of `options`, and of the credential variables of the environment) masked."""
    secrets = [str(v) for k, v in (options or {}).items() if _SECRET.search(k.lower()) and v]
    secrets += [os.environ[name] for name in _SECRET_ENV if os.environ.get(name)]
    for value in sorted(set(secrets), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
