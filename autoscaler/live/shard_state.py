"""What a shard's targets learned, kept in a ConfigMap per shard for the next holder.

``<lease_name>-shard-<n>-state`` in the Leases' namespace holds one JSON document per
target of the shard (``autoscaler.decision.handover``), under the target's key. The holder
writes it every ``SYNC_SECONDS`` and once more when it releases the shard; a new holder reads
it before it starts the shard's targets. A ConfigMap rather than the alternatives:

* an annotation on each workload would need ``patch`` on the workloads themselves (the
  service only ever writes their ``/scale``), and a write per target;
* an annotation on the shard's Lease would ride along every renewal (every 2 s), hundreds
  of targets' state each time, and a Lease is not meant to carry data;
* a ConfigMap per shard is one write per shard every ``SYNC_SECONDS`` and survives a crash
  of its holder with at most that much lost; its 1 MiB limit holds about 3,000 targets'
  state, far more than a shard has.

Only the shard's holder writes it, and only while it drives the shard (fenced); every write
carries the ``resourceVersion`` last read or written, and a 409 is answered by reading the
current one and writing again (the holder's state is the newest there is).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["SYNC_SECONDS", "ShardStateStore", "state_config_map_name"]

SYNC_SECONDS = 30.0
"""How often a holder writes its shards' state: what a crash may lose, at most."""
_KEY = "targets.json"


def state_config_map_name(prefix: str, shard: int) -> str:
    return f"{prefix}-shard-{shard}-state"


class ShardStateStore:
    """Reads and writes the shards' state ConfigMaps (see the module)."""

    def __init__(
        self, api_client: Any, namespace: str, prefix: str, *, request_timeout_seconds: float
    ) -> None:
        self._core = k8s.CoreV1Api(api_client)
        self.namespace = namespace
        self.prefix = prefix
        self._timeout = request_timeout_seconds
        self._versions: dict[int, str | None] = {}
        """Per shard: the resourceVersion last read or written (None: it does not exist)."""

    async def read(self, shard: int) -> dict[str, Any]:
        """The shard's documents by target key (empty when there are none yet)."""
        name = state_config_map_name(self.prefix, shard)
        try:
            found = await self._call(self._core.read_namespaced_config_map, name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            self._versions[shard] = None
            return {}
        self._versions[shard] = found.metadata.resource_version
        text = (found.data or {}).get(_KEY, "{}")
        documents = json.loads(text)
        if not isinstance(documents, dict):
            raise ValueError(f"{name}: {_KEY} is not a JSON object")
        return documents

    async def write(self, shard: int, documents: dict[str, Any]) -> None:
        """Replace the shard's documents (created when missing; a 409 reads and retries)."""
        name = state_config_map_name(self.prefix, shard)
        text = json.dumps(documents, separators=(",", ":"), sort_keys=True)
        for _ in range(3):
            if shard not in self._versions:
                await self.read(shard)
            version = self._versions.get(shard)
            metadata: dict[str, Any] = {
                "name": name,
                "namespace": self.namespace,
                "labels": {"autoscaler.io/shard-group": self.prefix},
            }
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
            body["data"] = {_KEY: text}
            try:
                if version is None:
                    written = await self._call(
                        self._core.create_namespaced_config_map, self.namespace, body
                    )
                else:
                    metadata["resourceVersion"] = version
                    written = await self._call(
                        self._core.replace_namespaced_config_map, name, self.namespace, body
                    )
            except ApiException as error:
                if error.status not in (404, 409):
                    raise
                self._versions.pop(shard, None)  # read again, then write over it
                continue
            self._versions[shard] = written.metadata.resource_version
            return
        raise RuntimeError(f"{name}: still conflicting after 3 writes")

    async def _call(self, method: Any, *args: Any) -> Any:
        async with asyncio.timeout(self._timeout):
            return await method(*args, _request_timeout=self._timeout)
