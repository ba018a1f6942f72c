"""Pre-annotation on an existing Dask cluster (`[model] cluster` or `workbench preannotate --cluster ADDRESS`).

Dask schedules and retries; the workbench adds no queue of its own. Each worker loads the pipeline once, in a
worker plugin (a worker that joins or restarts later loads it when it joins). Paragraphs travel in partitions of
PARTITION_SIZE texts, a few per worker in flight, so neither this process nor the scheduler ever holds the corpus;
results (spans and scores) come back in the corpus's order, and `preannotate` writes the pool exactly as a local
run does. A worker that dies has its partitions run again on another by Dask
(`distributed.scheduler.allowed-failures`, 3 by default); past that, the stage fails with ClusterWorkerError and
`preannotate` keeps nothing it wrote.

The workers need what this machine needs to pre-annotate: the workbench and the spaCy pipeline, same versions.
This module, and with it Dask, is imported only when a cluster is set.
"""

from __future__ import annotations

import contextlib
import socket
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from distributed import Client, Future, KilledWorker, get_worker
from distributed.diagnostics.plugin import WorkerPlugin
from more_itertools import chunked

from workbench.errors import ClusterError, ClusterWorkerError, ModelError
from workbench.pipeline import load_ner_pipeline
from workbench.preannotation.entities import Found, LabelSet, entities_of
from workbench.records import Span

# ~1 s of one worker's time at ~250 paragraphs/s: Dask's own cost per task (a few ms) stays under 1%, and the
# last partitions, which run while other workers idle, stay short.
PARTITION_SIZE = 256
IN_FLIGHT_PER_WORKER = 2
CONNECT_SECONDS = 10
# A scheduler that is down refuses at once; a host that does not answer at all is given this long (Dask's own
# connect retries for CONNECT_SECONDS whatever the cause).
PROBE_SECONDS = 3
WORKERS_WAIT_SECONDS = 30



class PipelinePlugin(WorkerPlugin):
    """Loads the NER pipeline once per worker process, when the plugin is registered or the worker joins."""

    idempotent = True  # registered again by a later run: the workers keep the pipeline they loaded

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.name = plugin_name(model_name)
        self.nlp: Any = None
        self.version = ""
        self.loads = 0

    def setup(self, worker: Any) -> None:
        self.nlp, self.version = load_ner_pipeline(self.model_name)
        self.loads += 1


def plugin_name(model_name: str) -> str:
    return f"workbench-pipeline:{model_name}"


def annotate_partition(
    model_name: str, keep: LabelSet, batch_size: int, texts: list[str]
) -> tuple[str, list[tuple[tuple[Span, ...], dict[str, int], float]]]:
    """On a worker: each text's entities and score, in order (as `preannotate` computes them here), with the
    pipeline version that found them."""
    plugin = get_worker().plugins[plugin_name(model_name)]
    found = [(spans, dict(dropped), score) for spans, dropped, score in entities_of(plugin.nlp, texts, keep,
                                                                                    batch_size)]  # fmt: skip
    return plugin.version, found


def loaded_pipelines(model_name: str, dask_worker: Any) -> tuple[str, int]:
    """On a worker: which version of the pipeline it holds, and how often it loaded it."""
    plugin = dask_worker.plugins[plugin_name(model_name)]
    return plugin.version, plugin.loads


def _probe(address: str) -> None:
    """A plain TCP connection to the scheduler's port first: refused or unanswered, OSError in seconds, not after
    Dask's retries."""
    host, _, port = address.partition("://")[2].rpartition(":")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS):
        pass


class ClusterPipeline:
    """The pipeline on the workers of a Dask cluster: its `version`, and `annotate(texts)` in order."""

    def __init__(self, client: Client, address: str, model_name: str, keep: LabelSet, batch_size: int):
        self.client, self.address = client, address
        self.model_name, self.keep, self.batch_size = model_name, keep, batch_size
        self.version, self.workers = self._load()

    @classmethod
    @contextlib.contextmanager
    def open(cls, address: str, model_name: str, keep: LabelSet, batch_size: int) -> Iterator[ClusterPipeline]:
        try:
            _probe(address)
            client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"The Dask scheduler at {address} cannot be reached ({_reason(exc)}). Start it (`dask scheduler`) "
                "and its workers (`dask worker ADDRESS --nthreads 1`), or fix the address in [model] cluster or "
                "--cluster; leave both unset to pre-annotate on this machine."
            ) from None
        try:
            yield cls(client, address, model_name, keep, batch_size)
        finally:
            client.close()

    def _load(self) -> tuple[str, int]:
        """Every worker loads the pipeline (once); they must all hold the same version."""
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_WAIT_SECONDS)
            self.client.register_plugin(PipelinePlugin(self.model_name))
            versions = self.client.run(loaded_pipelines, self.model_name)
        except (TimeoutError, OSError) as exc:
            raise ClusterError(
                f"The Dask cluster at {self.address} has no worker ({_reason(exc)}), so nothing can be pre-annotated. "
                f"Start workers (`dask worker {self.address} --nthreads 1`) and run again."
            ) from None
        except ModelError as exc:
            raise ClusterError(
                f"A worker of the Dask cluster at {self.address} could not load the pipeline: {exc} The workers need "
                "the workbench and the pipeline installed as on this machine."
            ) from None
        found = {version for version, _ in versions.values()}
        if len(found) != 1:
            raise ClusterError(
                f"The workers of the Dask cluster at {self.address} hold different versions of {self.model_name!r} "
                f"({', '.join(sorted(found))}), so their entities would not be comparable. Install one version on "
                "every worker and run again."
            )
        return found.pop(), len(versions)

    def annotate(self, texts: Iterable[str]) -> Iterator[Found]:
        """Each text's kept spans, dropped labels and score, in the texts' order; partitions are submitted as
        earlier ones come back, so at most IN_FLIGHT_PER_WORKER per worker wait on the cluster."""
        in_flight: deque[Future] = deque()
        limit = max(2, IN_FLIGHT_PER_WORKER * self.workers)
        try:
            for part in chunked(texts, PARTITION_SIZE):
                in_flight.append(self.client.submit(
                    annotate_partition, self.model_name, self.keep, self.batch_size, part, pure=False
                ))  # fmt: skip
                if len(in_flight) >= limit:
                    yield from self._collect(in_flight.popleft())
            while in_flight:
                yield from self._collect(in_flight.popleft())
        finally:
            for future in in_flight:
                future.cancel()

    def _collect(self, future: Future) -> Iterator[Found]:
        try:
            version, found = future.result()
        except KilledWorker:
            raise ClusterWorkerError(
                f"Dask workers of the cluster at {self.address} died while pre-annotating (killed, or out of memory: "
                "see the workers' logs), more often than Dask runs a partition again, so the stage stopped and "
                "kept nothing. Give the workers more memory or restart them, then run it again."
            ) from None
        except (OSError, TimeoutError, CancelledError) as exc:
            raise ClusterError(
                f"The connection to the Dask scheduler at {self.address} was lost while pre-annotating "
                f"({_reason(exc)}), so the stage stopped and kept nothing. Check the scheduler and run it again."
            ) from None
        except Exception as exc:  # raised by the pipeline on a worker: say what, not a remote traceback
            raise ClusterError(
                f"A worker of the Dask cluster at {self.address} failed on a partition of paragraphs "
                f"({type(exc).__name__}: {exc}), so the stage stopped and kept nothing."
            ) from None
        if version != self.version:
            raise ClusterError(
                f"A worker of the Dask cluster at {self.address} pre-annotated with {version}, not {self.version} "
                "like the others (it joined with another install), so the stage stopped and kept nothing. "
                "Install one version on every worker and run again."
            )
        for spans, dropped, score in found:
            yield spans, Counter(dropped), score


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
