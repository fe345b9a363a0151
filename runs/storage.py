"""Media files through Django's storage API: the adapter the engine writes into, and reading, serving and
deleting those files.

Every file the engine produces (keyframes, overlays) is written by the engine (worker/, Django-free) into
a ``worker.robot.media.MediaStorage`` it is handed; in the web app and its workers that is
:class:`DjangoMediaStorage`, a thin adapter over ``STORAGES["default"]``. Pages, the REST API and share
links serve the files after their own access checks (runs.media); a retaken episode's dead attempt has its
files deleted here too (runs.work). Nothing reads MEDIA_ROOT directly any more.

Settings (environment variables read by aspire_web/settings/base.py):

``ASPIRE_STORAGE``
    ``local`` (default): files under ``MEDIA_ROOT`` (``ASPIRE_MEDIA_ROOT``, default VAR_DIR/media) with
    Django's FileSystemStorage. Every web and worker process must then see the same directory.
    ``s3``: objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2, ...) with
    django-storages' S3Storage (boto3); hosts then share the bucket, not a directory.
``ASPIRE_S3_BUCKET``
    The bucket's name (required with ``s3``; the bucket must exist, it is not created).
``ASPIRE_S3_ENDPOINT_URL``
    The store's URL, e.g. ``http://minio.internal:9000``; unset for AWS itself.
``ASPIRE_S3_REGION``
    The region (else ``AWS_DEFAULT_REGION``, else boto3's default).
``ASPIRE_S3_PREFIX``
    A key prefix inside the bucket (e.g. ``aspire/``), to share a bucket; default none.
``ASPIRE_S3_ADDRESSING_STYLE``
    ``path`` or ``virtual``; default ``path`` when ``ASPIRE_S3_ENDPOINT_URL`` is set, else boto3's choice.
``ASPIRE_S3_URL_EXPIRE``
    Seconds a signed keyframe URL stays valid (default 300). It is also how long a URL already handed
    out keeps working after its viewer's access is withdrawn.
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``)
    Credentials, read by django-storages/boto3 from the environment (or ~/.aws, or an instance role);
    never written into settings. They need s3:GetObject, s3:PutObject, s3:DeleteObject and
    s3:ListBucket on the bucket (ListBucket: deleting a retaken episode's files, and a 404 rather than a
    403 for a missing object).
``ASPIRE_MEDIA_SERVE``
    How an authorised request for a keyframe is answered: ``redirect`` (default with ``s3``) sends a
    302 to the storage's signed URL, so the browser must reach ``ASPIRE_S3_ENDPOINT_URL``; ``stream``
    (default with ``local``, and the choice when browsers cannot reach the store) has the web process
    read the file from the storage and send it.

In Django settings these are ``STORAGES["default"]`` (BACKEND and OPTIONS), ``ASPIRE_STORAGE`` and
``ASPIRE_MEDIA_SERVE``.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from worker.robot.media import clean_name

#: Longest time a browser may keep a redirect to a signed URL, seconds (also capped by half its life).
MAX_REDIRECT_CACHE_S = 3600


def default_storage() -> Storage:
    """``STORAGES["default"]`` as it is now (looked up per call, so overridden settings take effect)."""
    return storages["default"]


class DjangoMediaStorage:
    """A worker.robot.media.MediaStorage over a Django storage (default: ``STORAGES["default"]``, looked
    up at each call). Storage errors (OSError, botocore's ClientError, ...) propagate, except a missing
    file on read (FileNotFoundError)."""

    def __init__(self, storage: Storage | None = None):
        self._storage = storage

    @property
    def storage(self) -> Storage:
        return self._storage if self._storage is not None else default_storage()

    def __repr__(self) -> str:
        return f"DjangoMediaStorage({type(self.storage).__name__})"

    def save(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Store ``data`` under ``name``; returns the name stored (the filesystem may add a suffix to
        keep an existing file; S3 overwrites). ValueError for a name that is not a relative path."""
        content = ContentFile(data)
        content.content_type = content_type  # S3Storage sends it as the object's Content-Type
        return self.storage.save(clean_name(name), content)

    def read(self, name: str) -> bytes:
        """The bytes of ``name``; FileNotFoundError when there is no such file (or a bad name)."""
        try:
            name = clean_name(name)
        except ValueError as exc:
            raise FileNotFoundError(str(exc)) from None
        with open_media(name, self.storage) as f:
            return f.read()

    def delete_tree(self, prefix: str) -> None:
        """Delete every file under ``prefix`` ("runs/7/episodes/31"), recursively; nothing if none."""
        _delete_tree(self.storage, clean_name(prefix))


def _delete_tree(storage: Storage, prefix: str) -> None:
    try:
        dirs, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{prefix}/{name}")
    for sub in dirs:
        _delete_tree(storage, f"{prefix}/{sub}")
    if isinstance(storage, FileSystemStorage):  # the now empty folders too (an object store has none)
        for path in sorted(Path(storage.path(prefix)).glob("**/"), key=lambda p: -len(p.parts)):
            try:
                path.rmdir()
            except OSError:
                pass


def media_storage() -> DjangoMediaStorage:
    """The adapter the engine is handed in this process (runs.work, experiments.workbench)."""
    return DjangoMediaStorage()


def open_media(name: str, storage: Storage | None = None):
    """``name`` opened for reading ("rb") from the storage (default ``STORAGES["default"]``); the caller
    closes it. FileNotFoundError when it is not there, or when ``name`` is not a relative path inside
    the storage; other storage errors propagate."""
    storage = storage or default_storage()
    try:
        return storage.open(clean_name(name), "rb")
    except (ValueError, SuspiciousOperation, IsADirectoryError) as exc:
        raise FileNotFoundError(f"no media file {name!r}: {exc}") from None


def signed_url(name: str, storage: Storage | None = None) -> str | None:
    """The URL a client may fetch ``name`` from directly, when media are served by redirect
    (``ASPIRE_MEDIA_SERVE=redirect``) and the storage gives such URLs (S3: a signed URL valid for
    ``ASPIRE_S3_URL_EXPIRE`` seconds); None when the web app must stream the file itself."""
    storage = storage or default_storage()
    if getattr(settings, "ASPIRE_MEDIA_SERVE", "stream") != "redirect" or isinstance(storage, FileSystemStorage):
        return None  # the filesystem storage's url() is MEDIA_URL, which nothing serves
    return storage.url(clean_name(name))


def redirect_cache_seconds(storage: Storage | None = None) -> int:
    """How long a client may reuse a redirect to a signed URL: half the URL's life, at most an hour."""
    storage = storage or default_storage()
    expire = int(getattr(storage, "querystring_expire", 0) or 0)
    return max(0, min(MAX_REDIRECT_CACHE_S, expire // 2))


def local_media_root() -> Path | None:
    """The directory the default storage keeps files in, when it is the local filesystem; else None."""
    storage = default_storage()
    if isinstance(storage, FileSystemStorage):
        return Path(storage.location)
    return None
