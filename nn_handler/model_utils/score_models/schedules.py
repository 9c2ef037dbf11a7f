"""The original NNHandler's import path ``nn_handler.model_utils.score_models.schedules``:
re-exports only. The sampling-time grids live in :mod:`nn_handler.generative.time_grids`."""

from ...generative.time_grids import TSchedule, get_schedule_type, get_t_schedule

__all__ = ["TSchedule", "get_schedule_type", "get_t_schedule"]
