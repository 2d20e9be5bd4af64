"""Downloads, streamed: one file (FileResponse), or the whole folder as a tar.gz written chunk by
chunk while the client reads it. Nothing is built in memory or on disk first.

Only files listed in the manifest (plus manifest.json itself) can be fetched, which also rules
out any path trickery ("../").
"""
from __future__ import annotations

import tarfile
import zlib
from pathlib import Path
from typing import Iterator

from django.http import FileResponse, Http404, StreamingHttpResponse

from annotation.models import DatasetSnapshot

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


def snapshot_files(snapshot: DatasetSnapshot) -> list[str]:
    if snapshot.status != DatasetSnapshot.Status.READY or not snapshot.path:
        return []
    return sorted(snapshot.manifest.get("files", {})) + ["manifest.json"]


def snapshot_file_path(snapshot: DatasetSnapshot, name: str) -> Path:
    if name not in snapshot_files(snapshot):
        raise Http404("No such file in this snapshot")
    path = Path(snapshot.path) / name
    if not path.is_file():
        raise Http404("The snapshot's file is missing on disk")
    return path


def file_response(snapshot: DatasetSnapshot, name: str) -> FileResponse:
    path = snapshot_file_path(snapshot, name)
    content_type = {
        ".jsonl": "application/x-ndjson",
        ".json": "application/json",
        ".md": "text/markdown; charset=utf-8",
        ".parquet": "application/vnd.apache.parquet",
    }.get(path.suffix, "application/octet-stream")
    filename = f"{snapshot.project.slug}-v{snapshot.version}-{name.replace('/', '-')}"
    return FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)


def tar_stream(snapshot: DatasetSnapshot) -> Iterator[bytes]:
    """A POSIX tar of the snapshot folder, one member at a time: header, file in 1 MB chunks,
    padding to the 512-byte block, then the two empty end blocks."""
    prefix = f"{snapshot.project.slug}-v{snapshot.version}"
    for name in snapshot_files(snapshot):
        path = snapshot_file_path(snapshot, name)
        info = tarfile.TarInfo(f"{prefix}/{name}")
        stat = path.stat()
        info.size = stat.st_size
        info.mtime = int(stat.st_mtime)
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
        remainder = info.size % BLOCK
        if remainder:
            yield b"\0" * (BLOCK - remainder)
    yield b"\0" * (BLOCK * 2)


def gzip_stream(chunks: Iterator[bytes], level: int = 5) -> Iterator[bytes]:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def archive_response(snapshot: DatasetSnapshot) -> StreamingHttpResponse:
    if not snapshot_files(snapshot):
        raise Http404("This snapshot is not ready")
    response = StreamingHttpResponse(gzip_stream(tar_stream(snapshot)), content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{snapshot.project.slug}-v{snapshot.version}.tar.gz"'
    return response
