"""A benchmark worker process: the refund worker or the baseline, with chosen tuning, logging as
``refunds worker`` does."""

from __future__ import annotations

import argparse
import asyncio
import compileall
import signal
from pathlib import Path
from typing import get_args

from temporalio.client import Client
from temporalio.worker import Worker

from activities.alipay import AlipayChannel
from activities.bank import BankChannel
from bench.baseline import BaselineChannels, BaselineWorkflow, baseline_step
from converter import DATA_CONVERTER
from logs import configure_logging
from settings import Settings, WorkflowSandbox
from tuning import (
    WorkerTuning,
    freeze_startup_heap,
    limit_malloc_arenas,
    worker_options,
    worker_runtime,
)
from worker import build_worker


def tuning_from(args: argparse.Namespace) -> WorkerTuning:
    return WorkerTuning(
        max_concurrent_activities=args.max_activities,
        max_cached_workflows=args.max_cached,
        workflow_pollers=args.workflow_pollers,
        activity_pollers=args.activity_pollers,
        sandbox=args.sandbox,
        passthrough=not args.no_passthrough,
        precompile=not args.no_precompile,
    )


async def serve(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    client = await Client.connect(
        settings.temporal_address, data_converter=DATA_CONVERTER, runtime=worker_runtime(settings)
    )
    tuning = tuning_from(args)
    if args.kind == "refund":
        worker = build_worker(client, settings=settings, tuning=tuning)
    else:
        if tuning.writes_bytecode:
            compileall.compile_dir(Path(__file__).parent, quiet=2, maxlevels=0)
        channels = BaselineChannels(
            AlipayChannel.from_settings(settings), BankChannel.from_settings(settings)
        )
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[BaselineWorkflow],
            activities=[baseline_step, channels.to_alipay, channels.to_bank, channels.bank_settled],
            **worker_options(tuning, workflow_modules=(BaselineWorkflow.__module__,)),
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    freeze_startup_heap()
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def parser() -> argparse.ArgumentParser:
    defaults = WorkerTuning()
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["refund", "baseline"])
    p.add_argument("--max-activities", type=int, default=defaults.max_concurrent_activities)
    p.add_argument("--max-cached", type=int, default=defaults.max_cached_workflows)
    p.add_argument("--workflow-pollers", type=int, default=defaults.workflow_pollers)
    p.add_argument("--activity-pollers", type=int, default=defaults.activity_pollers)
    p.add_argument("--sandbox", choices=get_args(WorkflowSandbox), default=defaults.sandbox)
    p.add_argument("--no-passthrough", action="store_true")
    p.add_argument("--no-precompile", action="store_true")
    return p


if __name__ == "__main__":
    limit_malloc_arenas()
    asyncio.run(serve(parser().parse_args()))
