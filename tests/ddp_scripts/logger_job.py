"""logger.md's example under torchrun (2 processes, gloo): which ranks get a logger."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch.distributed as dist

from nn_handler.logger import initialize_logger
from nn_handler.utils.enums import LoggingMode

dist.init_process_group("gloo")
rank = dist.get_rank()
logger = initialize_logger(
    logger_name="MyTrainingRun",
    mode=LoggingMode.BOTH,
    filename="training_logs/run_001.log",
    level=logging.INFO,
)
if logger:
    logger.info("Training started on rank %d", rank)
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "logger": logger is not None}))
dist.destroy_process_group()
