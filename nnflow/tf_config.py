"""`TF_CONFIG`: the cluster of a multi_worker run, and this process's task in it. Standard library only."""

from __future__ import annotations

import hashlib
import json
import os

from .errors import ConfigError, Problem

TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\' (index 1 on the second machine)'
)


def read_tf_config() -> dict:
    """`TF_CONFIG`, checked: a cluster of chief/worker addresses and this process's task in it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise _refused(
            f"fit.distribute is multi_worker, but TF_CONFIG is not set. Start each worker with {TF_CONFIG_EXAMPLE}."
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _refused(
            f"TF_CONFIG is not JSON ({error.msg} at character {error.pos}). Expected {TF_CONFIG_EXAMPLE}."
        ) from None
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("cluster"), dict)
        or not isinstance(config.get("task"), dict)
    ):
        raise _refused(f"TF_CONFIG needs a `cluster` and a `task` mapping. Expected {TF_CONFIG_EXAMPLE}.")
    _check_cluster(config["cluster"])
    _check_task(config["cluster"], config["task"])
    return config


def _refused(message: str) -> ConfigError:
    return ConfigError(Problem(message, where="TF_CONFIG"))


def _check_cluster(cluster: dict) -> None:
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise _refused(
                f"TF_CONFIG's cluster has a {job!r} job; MultiWorkerMirroredStrategy uses only `chief` and `worker` "
                "(parameter servers and evaluators belong to other strategies)."
            )
        if not isinstance(addresses, list) or not addresses or not all(is_address(a) for a in addresses):
            raise _refused(
                f'TF_CONFIG\'s cluster.{job} must be a list of "host:port" addresses (a port from 1 to 65535); '
                f"received {json.dumps(addresses)}."
            )
    if "worker" not in cluster and "chief" not in cluster:
        raise _refused(f"TF_CONFIG's cluster lists no workers. Expected {TF_CONFIG_EXAMPLE}.")


def _check_task(cluster: dict, task: dict) -> None:
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise _refused(f"TF_CONFIG's task type {kind!r} is not a job of its cluster ({', '.join(cluster)}).")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise _refused(
            f"TF_CONFIG's task index {index!r} is not in the cluster: `{kind}` has {len(cluster[kind])} address(es), "
            f"so 0 to {len(cluster[kind]) - 1}."
        )
    if len(cluster.get("chief", [None])) != 1:
        raise _refused(
            "TF_CONFIG's cluster.chief must list exactly one address (or leave the chief out: worker 0 is then the chief)."
        )


def is_address(value) -> bool:
    if not isinstance(value, str):
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isascii() and port.isdigit() and 0 < int(port) < 65536


def task_names(config: dict) -> list[str]:
    """Every task of the cluster, chief first: `chief:0`, `worker:0`, `worker:1`, ..."""
    return [f"{job}:{index}" for job in ("chief", "worker") for index in range(len(config["cluster"].get(job, [])))]


def is_chief(config: dict) -> bool:
    """The chief is `chief:0`, or `worker:0` in a cluster without a chief (TensorFlow's rule)."""
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task.get("index", 0) == 0


def task_name(config: dict) -> str:
    """This process's task: `worker:1`."""
    task = config["task"]
    return f"{task['type']}:{task.get('index', 0)}"


def task_address(config: dict) -> str:
    return address_of(config, task_name(config))


def address_of(config: dict, task: str) -> str:
    job, _, index = task.partition(":")
    return config["cluster"][job][int(index)]


def host_of(address: str) -> str:
    return address.rpartition(":")[0].strip("[]")


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def cluster_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config["cluster"], sort_keys=True).encode()).hexdigest()[:16]
