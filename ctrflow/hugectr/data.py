"""`hugectr.data`: where data and models live (semantics spec §10.2, Data Source API).

`DataSourceParams(use_hdfs=False, namenode="localhost", port=9000)` names an HDFS namenode; its fields are
read/write as in v3.5 (the document's `hdfs_*` / `local_*` fields do not exist in the v3.5 bindings).
`DataSource(params).move_to_local(hdfs_path, local_path)` copies one file or folder to the local file
system through `ctrflow.storage.data_source.move_to_local`, building `hdfs://<namenode>:<port>/<path>` when
`use_hdfs` is set and the path is not already a URL.
"""

from __future__ import annotations

from typing import Any

from .argument_validation import Argument, FacadeObject, bind_arguments, boolean, instance_of, integer, string


class DataSourceParams(FacadeObject):
    """The file system of a run's data and models.

    Args:
        use_hdfs: read from / write to HDFS instead of the local file system.
        namenode: host of the Hadoop namenode (ignored unless use_hdfs).
        port: port of the Hadoop namenode, 1..65535 (ignored unless use_hdfs).
    """

    __slots__ = ()
    _owner = "DataSourceParams"
    _writable = True
    _signature = (
        Argument("use_hdfs", boolean(), False),
        Argument("namenode", string(), "localhost"),
        Argument("port", integer(1, 65535), 9000),
    )

    def url_of(self, path: str) -> str:
        """The URL of `path`: unchanged unless use_hdfs and `path` is not already a URL."""
        if not self.use_hdfs or "://" in path:
            return path
        return f"hdfs://{self.namenode}:{self.port}/{path.lstrip('/')}"


class DataSource:
    """Moves data named by a `DataSourceParams` to the local file system.

    Args:
        data_source_params: where the source paths live.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments(
            "DataSource", (Argument("data_source_params", instance_of(DataSourceParams)),), args, kwargs
        )
        self.data_source_params: DataSourceParams = values["data_source_params"]

    def move_to_local(self, *args: Any, **kwargs: Any) -> Any:
        """Copy `hdfs_path` (a path on the configured file system, or any URL) to `local_path`."""
        values = bind_arguments(
            "DataSource.move_to_local",
            (Argument("hdfs_path", string()), Argument("local_path", string())),
            args,
            kwargs,
        )
        from ctrflow.storage.data_source import move_to_local

        return move_to_local(self.data_source_params.url_of(values["hdfs_path"]), values["local_path"])

    def __repr__(self) -> str:
        return f"DataSource({self.data_source_params!r})"


__all__ = ["DataSource", "DataSourceParams"]
