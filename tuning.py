"""How a worker runs: its slots, pollers and cache, the SDK sandbox, its runtime (core logs and
metrics), and process tweaks.

The defaults are what ``make bench`` measured best with the sandbox on (BENCHMARKS.md).
"""

from __future__ import annotations

import compileall
import ctypes
import gc
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from importlib.util import spec_from_file_location
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from settings import Settings, WorkflowSandbox

PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "structlog",
    "holidays",
    "cryptography",
    "domain",
    "workflows.contract",
    "activities.payloads",
    "activities.people",
    "workflows.metrics",
    "workflows.models",
    "workflows.search_attributes",
    "workflows.audit",
    "workflows.progress",
    "workflows.review_checks",
    "workflows.payout_rules",
)
"""Pure or worker-side modules the sandbox imports once instead of once per workflow run.

The workflow package's pure parts (the refund's record, the audit trail, the review checks, the
payment rules) are among them: data and functions of it, no clock but ``workflow.now()``, no I/O,
no randomness, which ``tests/test_architecture.py`` checks in their source. Re-imported for every
run they were a third of a refund worker's CPU (class and dataclass building, BENCHMARKS.md)."""

WORKFLOW_MODULES = (
    "workflows.refund",
    "workflows.payout",
    "workflows.by_hand",
    "workflows.review_deadline",
    "workflows.review_desk",
    "workflows.signed_actions",
    "workflows.versions",
    "workflows.steps",
    "workflows.endings",
    "workflows.reconciliation",
)
"""The workflow code itself: imported into the sandbox (and so checked) for every run in the
strict sandbox; passed through, unchecked, with ``imports-once`` (see ``workflow_runner``)."""

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter behind the ``MALLOC_ARENA_MAX`` variable."""


@dataclass(frozen=True)
class WorkerTuning:
    """Worker knobs; the defaults are what ``make bench`` measured best (see BENCHMARKS.md)."""

    max_concurrent_activities: int = 48
    max_cached_workflows: int = 500
    workflow_pollers: int = 5
    activity_pollers: int = 5
    sandbox: WorkflowSandbox = "strict"
    passthrough: bool = True
    precompile: bool = True

    @property
    def writes_bytecode(self) -> bool:
        """Whether to precompile: only the strict sandbox re-imports workflow code every run."""
        return self.precompile and self.sandbox == "strict"


def precompile_workflow_code() -> None:
    """Write bytecode for the workflow package, even under PYTHONDONTWRITEBYTECODE.

    Without a ``.pyc`` every process that imports the workflow package compiles it from source;
    before the strict sandbox shared its code objects (``share_workflow_code``), every workflow
    run did (a measured 30% of worker CPU per refund, BENCHMARKS.md). Imports read ``.pyc``
    files whatever that variable says.
    """
    package = Path(workflows.__file__).parent
    compileall.compile_dir(package, quiet=2, maxlevels=0)


def workflow_runner(
    sandbox: WorkflowSandbox,
    *,
    passthrough: bool = True,
    workflow_modules: tuple[str, ...] = WORKFLOW_MODULES,
) -> WorkflowRunner:
    """What runs workflow code: the SDK's sandbox, strict or importing once, or no sandbox.

    ``strict`` (the default everywhere, production included) is the SDK's own: the workflow
    modules are imported into the sandbox for every run, so its restrictions (no
    ``datetime.now``, randomness or I/O) apply to the workflow code itself, at run time.
    ``imports-once`` passes the workflow modules through: imported once, cheaper, but their
    code then runs unchecked (a passed-through module holds the real ``datetime``), as with
    ``off``, which runs no sandbox at all. Both are explicit opt-ins (BENCHMARKS.md has the cost).
    """
    if sandbox == "off":
        return UnsandboxedWorkflowRunner()
    if sandbox == "strict":
        share_workflow_code(("workflows", *workflow_modules))
    restrictions = SandboxRestrictions.default
    if passthrough:
        modules: tuple[str, ...] = PASSTHROUGH_MODULES
        if sandbox == "imports-once":
            modules += workflow_modules
        restrictions = restrictions.with_passthrough_modules(*modules)
    return SandboxedWorkflowRunner(restrictions=restrictions)


class _SharedCodeLoader(SourceFileLoader):
    """A module's loader that compiles (or unmarshals) its file once, on the first import, and
    hands every later import the same code object: the code a worker started with is the code
    every run executes, whatever happens to the files under it."""

    def __init__(self, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.code: CodeType | None = None

    def get_code(self, fullname: str) -> CodeType:
        if self.code is None:
            code = super().get_code(fullname)
            if code is None:  # pragma: no cover - a source file always has code
                raise ImportError(f"no code for {fullname}", name=fullname)
            self.code = code
        return self.code


class _SharedCodeFinder(MetaPathFinder):
    """Finds the named modules once through the path finder, then without touching the disk,
    each with its ``_SharedCodeLoader``."""

    def __init__(self) -> None:
        self.modules: set[str] = set()
        self.found: dict[str, tuple[_SharedCodeLoader, list[str] | None]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.modules:
            return None
        found = self.found.get(fullname)
        if found is None:
            spec = PathFinder.find_spec(fullname, path, target)
            if spec is None or type(spec.loader) is not SourceFileLoader or spec.origin is None:
                return spec
            loader = _SharedCodeLoader(fullname, spec.origin)
            found = self.found[fullname] = (loader, spec.submodule_search_locations)
        loader, locations = found
        return spec_from_file_location(
            fullname, loader.path, loader=loader, submodule_search_locations=locations
        )


_SHARED_CODE = _SharedCodeFinder()


def share_workflow_code(modules: Sequence[str]) -> None:
    """Let the strict sandbox's imports of ``modules`` share one code object per module.

    The sandbox imports the workflow code afresh for every run it starts: a new module, new
    functions and classes, its own globals and restricted imports, and so its checks; that stays.
    What each import also did was look the module up on disk (a fifth of the import's CPU) and
    unmarshal its bytecode into new code objects (a third of the memory every cached run held,
    BENCHMARKS.md). Code objects are immutable, so every run's module now executes the same ones,
    read here, as the worker is built.
    """
    _SHARED_CODE.modules.update(modules)
    for name in modules:
        parent = name.rpartition(".")[0]
        spec = _SHARED_CODE.find_spec(name, import_module(parent).__path__ if parent else None)
        if spec is not None and isinstance(spec.loader, _SharedCodeLoader):
            spec.loader.get_code(name)
    if _SHARED_CODE not in sys.meta_path:
        sys.meta_path.insert(0, _SHARED_CODE)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would, unless that variable is set.

    glibc gives threads that allocate at the same time arenas of their own, up to eight per core,
    and memory freed in one arena is not reused by another: with the SDK's threads and the
    activity pool, that fragmentation was over a quarter of the memory per cached workflow
    (BENCHMARKS.md). Call it before the worker's threads start. A no-op off glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_ARENA_MAX, arenas)


def freeze_startup_heap() -> None:
    """Keep what start-up created (modules, classes, the worker itself) out of later collections.

    The collector's full passes walk every tracked object; most of them live as long as the
    process, and a full pass stopped a busy worker for about 80 ms. Frozen, they are skipped:
    garbage collection fell from 1.07 to 0.63-0.74 ms per auto refund in a drain (BENCHMARKS.md).
    Call it once the worker is built, just before it runs.
    """
    gc.collect()
    gc.freeze()


def worker_options(
    tuning: WorkerTuning, workflow_modules: tuple[str, ...] = WORKFLOW_MODULES
) -> dict[str, Any]:
    """The ``Worker`` arguments a tuning stands for (shared with the benchmark's baseline)."""
    return {
        "activity_executor": ThreadPoolExecutor(max_workers=tuning.max_concurrent_activities),
        "max_concurrent_activities": tuning.max_concurrent_activities,
        "max_cached_workflows": tuning.max_cached_workflows,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(tuning.workflow_pollers),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(tuning.activity_pollers),
        "workflow_runner": workflow_runner(
            tuning.sandbox, passthrough=tuning.passthrough, workflow_modules=workflow_modules
        ),
    }


def worker_runtime(settings: Settings) -> Runtime:
    """The SDK runtime of a worker: the core's own warnings go through this process's logging
    (JSON in production), and its metrics to Prometheus where a port is set.

    Left to itself the core writes them, coloured, to standard output; a worker whose output is
    a pipe no one reads would then stop dead once the pipe is full."""
    logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    prometheus = (
        PrometheusConfig(bind_address=f"0.0.0.0:{settings.metrics_port}")
        if settings.metrics_port is not None
        else None
    )
    return Runtime(telemetry=TelemetryConfig(logging=logs, metrics=prometheus))
