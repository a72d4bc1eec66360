"""Hadoop FileSystem calls: the only place that talks to the JVM gateway about paths.

Paths go through Hadoop's FileSystem API, so the same code reads and writes a local disk, HDFS or an
object store.
"""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from defaultrisk.errors import OutputError, first_line


def filesystem(spark: SparkSession, path: str):
    """The raw Hadoop FileSystem for a path (no `.crc` side files on a local disk) and the path."""
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    fs = jpath.getFileSystem(conf)
    if fs.getUri().getScheme() == "file":
        fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf).getRawFileSystem()
    return fs, jpath


def qualified(spark: SparkSession, path: str) -> str:
    """The absolute URI of a path (`file:/...`, `hdfs://...`), as a catalog table's location needs."""
    fs, jpath = filesystem(spark, path)
    return str(fs.makeQualified(jpath).toString())


def local_path(spark: SparkSession, path: str) -> str | None:
    """The operating system's name of `path` when it lives on the local disk; None elsewhere."""
    fs, jpath = filesystem(spark, path)
    uri = fs.makeQualified(jpath).toUri()
    return str(uri.getPath()) if uri.getScheme() == "file" else None


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, jpath = filesystem(spark, path)
    return bool(fs.exists(jpath))


def kind(spark: SparkSession, path: str) -> str | None:
    """What is at `path`: "file", "folder", or None when nothing is there."""
    fs, jpath = filesystem(spark, path)
    if not fs.exists(jpath):
        return None
    return "folder" if fs.getFileStatus(jpath).isDirectory() else "file"


def delete_path(spark: SparkSession, path: str) -> None:
    fs, jpath = filesystem(spark, path)
    if fs.exists(jpath):
        fs.delete(jpath, True)


def list_files(spark: SparkSession, path: str) -> list[str]:
    fs, jpath = filesystem(spark, path)
    if not fs.exists(jpath):
        return []
    return sorted(str(s.getPath().toString()) for s in fs.listStatus(jpath) if s.isFile())


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, jpath = filesystem(spark, path)
    stream = fs.create(jpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small file's text; None when it does not exist (or another run removed it meanwhile)."""
    local = local_path(spark, path)
    try:
        if local is not None:
            with open(local, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        fs, jpath = filesystem(spark, path)
        stream = fs.open(jpath)
    except FileNotFoundError:
        return None
    except Exception as exc:  # Hadoop's FileNotFoundException, or a real failure
        if not path_exists(spark, path):
            return None
        raise OutputError(f"cannot read {path}: {first_line(exc)}") from exc
    try:
        data = spark.sparkContext._jvm.org.apache.hadoop.io.IOUtils.readFullyToByteArray(stream)
    finally:
        stream.close()
    return bytes(data).decode("utf-8", errors="replace")


def create_new(spark: SparkSession, path: str, text: str) -> bool:
    """Create `path` holding `text` only if nothing is there, atomically; False if something is.

    On a local disk `open(O_CREAT | O_EXCL)`; elsewhere Hadoop's `create(path, overwrite=False)`, which
    HDFS makes atomic. Either way two runs cannot both succeed.
    """
    local = local_path(spark, path)
    if local is not None:
        fd = _create_local(path, local)
        if fd is None:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    fs, jpath = filesystem(spark, path)
    try:
        fs.mkdirs(jpath.getParent())
        stream = fs.create(jpath, False)
    except Exception as exc:
        if fs.exists(jpath):
            return False
        raise OutputError(f"cannot write {path}: {first_line(exc)}") from exc
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    return True


def _create_local(path: str, local: str) -> int | None:
    for _ in range(10):  # a run tidying up may remove the empty parent folder in between: make it again
        try:
            os.makedirs(os.path.dirname(local), exist_ok=True)
        except OSError as exc:  # a regular file where a folder should be, no permission, no space
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        try:
            return os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    raise OutputError(f"cannot write {path}: its folder keeps disappearing")


def mkdirs(spark: SparkSession, path: str) -> None:
    fs, jpath = filesystem(spark, path)
    try:
        made = fs.mkdirs(jpath)
    except Exception as exc:  # e.g. a regular file where a parent folder should be
        raise OutputError(f"cannot create {path}: {first_line(exc)}") from exc
    if not made:
        raise OutputError(f"cannot create {path}")


def rename_to_absent(spark: SparkSession, source: str, target: str) -> None:
    """Rename a folder to a name that must not exist yet.

    Hadoop renames a source *into* a target folder that exists (and the local file system then falls
    back to copying into it), so a target that appeared is refused instead. Callers hold the date's lock.
    """
    if path_exists(spark, target):
        raise OutputError(f"cannot move {source} to {target}: the target exists")
    rename(spark, source, target)


def rename(spark: SparkSession, source: str, target: str, overwrite: bool = False) -> None:
    """Rename within one file system; with `overwrite`, atomically replace an existing file."""
    jvm = spark.sparkContext._jvm
    fs, dst = filesystem(spark, target)
    src, dst = fs.makeQualified(jvm.org.apache.hadoop.fs.Path(source)), fs.makeQualified(dst)
    try:
        if overwrite and dst.toUri().getScheme() == "file":
            os.replace(src.toUri().getPath(), dst.toUri().getPath())  # rename(2): atomic on a local disk
            return
        if overwrite:
            conf = spark.sparkContext._jsc.hadoopConfiguration()
            options = spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
            options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
            jvm.org.apache.hadoop.fs.FileContext.getFileContext(dst.toUri(), conf).rename(src, dst, options)
            return
        if fs.rename(src, dst):
            return
    except Exception as exc:  # an OSError or a Py4J error carrying the file system's own message
        raise OutputError(f"cannot move {source} to {target}: {first_line(exc)}") from exc
    raise OutputError(f"cannot move {source} to {target}")


def put_file(spark: SparkSession, local: str, target: str) -> None:
    """Copy one local file to `target` (any Hadoop path), replacing it."""
    fs, jtarget = filesystem(spark, target)
    fs.copyFromLocalFile(False, True, spark.sparkContext._jvm.org.apache.hadoop.fs.Path(local), jtarget)


def publish_folder(spark: SparkSession, local: str, target: str) -> None:
    """Copy a small local folder's files to `target` (any Hadoop path), replacing what was there."""
    fs, jtarget = filesystem(spark, target)
    jvm = spark.sparkContext._jvm
    staged = jvm.org.apache.hadoop.fs.Path(f"{target.rstrip('/')}.partial")
    fs.delete(staged, True)
    fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(local), staged)
    fs.delete(jtarget, True)
    if not fs.rename(staged, jtarget):
        raise OutputError(f"cannot move {staged} to {target}")


def io_failure(exc: Exception) -> str | None:
    """The first line of the file system error behind a failed Spark write (the path and the operating
    system's reason: no space left, not a directory, permission denied); None when the failure was
    something else, such as a task's own error."""
    cause = getattr(exc, "java_exception", None)
    while cause is not None:
        klass = cause.getClass()
        while klass is not None:
            if klass.getName() == "java.io.IOException":
                text = str(cause.toString()).strip()
                return text.splitlines()[0] if text else klass.getName()
            klass = klass.getSuperclass()
        cause = cause.getCause()
    return None


def remove_if_empty(spark: SparkSession, path: str) -> None:
    """Delete a folder only if it exists and holds nothing; one that filled up meanwhile is kept."""
    fs, jpath = filesystem(spark, path)
    try:
        if fs.exists(jpath) and not fs.listStatus(jpath):
            fs.delete(jpath, False)
    except Exception:  # another run wrote into it in between: it is theirs now
        return


def list_children(spark: SparkSession, path: str) -> list[str]:
    """Every entry (file or folder) directly under `path`, sorted; none if it does not exist."""
    fs, jpath = filesystem(spark, path)
    if not fs.exists(jpath):
        return []
    return sorted(str(s.getPath().toString()) for s in fs.listStatus(jpath))


def data_files(spark: SparkSession, path: str) -> list[str] | None:
    """The files a reader of `path` takes: the file itself, or a folder's files except Spark's and
    Hadoop's side files (`_SUCCESS`, `.crc`: names starting with `_` or `.`); None if nothing is there."""
    fs, jpath = filesystem(spark, path)
    if not fs.exists(jpath):
        return None
    status = fs.getFileStatus(jpath)
    if status.isFile():
        return [str(status.getPath().toString())]
    return sorted(
        str(s.getPath().toString())
        for s in fs.listStatus(jpath)
        if s.isFile() and not s.getPath().getName().startswith(("_", "."))
    )


def read_head(spark: SparkSession, path: str, size: int) -> bytes:
    """Up to `size` bytes from the start of a file, decompressed if its name says it is compressed."""
    fs, jpath = filesystem(spark, path)
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(jpath)
    stream = fs.open(jpath)
    try:
        if codec is not None:
            stream = codec.createInputStream(stream)
        return bytes(stream.readNBytes(size))
    finally:
        stream.close()
