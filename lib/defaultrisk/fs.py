"""Hadoop FileSystem calls: the only place that talks to the JVM gateway about paths.

Paths go through Hadoop's FileSystem API, so the same code reads and writes a local disk, HDFS or an
object store.
"""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from defaultrisk.errors import OutputError


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


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, jpath = filesystem(spark, path)
    return bool(fs.exists(jpath))


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


def mkdirs(spark: SparkSession, path: str) -> None:
    fs, jpath = filesystem(spark, path)
    if not fs.mkdirs(jpath):
        raise OutputError(f"cannot create {path}")


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


def first_line(exc: Exception) -> str:
    java = getattr(exc, "java_exception", None)  # a Py4J error: the JVM exception says what happened
    if java is not None:
        cause = java
        while cause.getCause() is not None:
            cause = cause.getCause()
        text = str(cause.toString()).strip()
    else:
        text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def remove_if_empty(spark: SparkSession, path: str) -> None:
    """Delete a folder only if it exists and holds nothing."""
    fs, jpath = filesystem(spark, path)
    if fs.exists(jpath) and not fs.listStatus(jpath):
        fs.delete(jpath, False)


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
