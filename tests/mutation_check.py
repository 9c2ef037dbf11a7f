"""A curated mutation check for checkpointing, resume, EMA, the callback bridge and DDP aggregation.

Each entry of :data:`MUTATIONS` is a small deliberate bug (a text replacement in one source file)
and the fast tests expected to catch it. For each mutation the check copies the working tree
(tracked and untracked, not ignored, files) into a temporary folder, applies the bug there, runs
the named tests in the copy and reports ``killed`` (a test failed, as it should) or ``survived``
(the tests missed the bug). The working tree is never modified.

Run it before resolving an issue that touches those areas::

    python tests/mutation_check.py              # every mutation, its named tests
    python tests/mutation_check.py ema-decay     # some mutations, by name
    python tests/mutation_check.py --all-fast    # each one against the fast tests that run its file
    python tests/mutation_check.py --list        # names, files and tests

The exit status is 0 when every mutation was killed. ``tests/README.md`` lists the mutations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from select_tests import TRACE_ENV, select_test_files

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["MUTATIONS", "Mutation", "apply_mutation", "main"]


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug.

    Attributes:
        name: short identifier used on the command line.
        file: the source file, relative to the repository root.
        edits: ``(original, mutated)`` text pairs; each original occurs exactly once in ``file``.
        tests: pytest node ids (relative to the root) expected to fail with the bug in place.
        bug: what the bug does, in words.
    """

    name: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]
    bug: str


_RESUME = "tests/test_checkpoint_resume.py"
_EMA = "tests/test_ema.py"
_TWO_RANKS = "tests/test_ddp_two_ranks.py"
_FORK_GUARD = "tests/test_fork_guard.py::test_with_nn_handler_imported_a_fork_waits_for_the_lock"
_CALLBACKS = "tests/test_callbacks.py"
_LAUNCHER_PARTS = "tests/test_launcher_parts.py"
_CHUNKED = "tests/test_chunked_steps.py"
_EFFECTS = "tests/test_checkpoint_effects.py"
_FUZZ = "tests/test_checkpoint_fuzz_types.py"
_ECOSYSTEM = "tests/test_lightning_ecosystem.py"
_DDP_CHUNKED = "tests/test_ddp_chunked.py"

MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ checkpointing and resume
    Mutation(
        name="rng-python-numpy",
        file="nn_handler/checkpoint/_rng.py",
        edits=(
            ('    if "python" in state:\n', "    if False:\n"),
            ('    if "numpy" in state:\n', "    if False:\n"),
        ),
        tests=(f"{_RESUME}::test_load_restores_python_and_numpy_generators",),
        bug="load restores torch's generator but not Python's `random` nor NumPy's",
    ),
    Mutation(
        name="rng-torch",
        file="nn_handler/checkpoint/_rng.py",
        edits=(('        torch.set_rng_state(state["torch"].cpu())', "        pass"),),
        tests=(f"{_RESUME}::test_load_restores_generators_unless_told_not_to",),
        bug="load does not restore torch's CPU generator",
    ),
    Mutation(
        name="loader-generator",
        file="adapters/fit/inputs.py",
        edits=(
            (
                "set_generator_state(slot.loader, pending.get(role))",
                "set_generator_state(slot.loader, None)",
            ),
        ),
        tests=(f"{_RESUME}::test_a_loaders_own_generator_continues_after_load",),
        bug="a loader's own `generator=` does not continue its saved state after load",
    ),
    Mutation(
        name="scheduler-state",
        file="nn_handler/checkpoint/_restore.py",
        edits=(
            (
                '        handler.scheduler.load_state_dict(ckpt["scheduler_state_dict"])',
                "        pass",
            ),
        ),
        tests=(f"{_RESUME}::test_resume_with_a_stateful_scheduler_equals_one_run",),
        bug="load rebuilds the scheduler but does not restore its state",
    ),
    Mutation(
        name="optimizer-state",
        file="nn_handler/checkpoint/_restore.py",
        edits=(
            (
                '            handler.optimizer.load_state_dict(ckpt["optimizer_state_dict"])',
                "            pass",
            ),
        ),
        tests=(f"{_RESUME}::test_train_save_load_train_equals_one_run",),
        bug="load rebuilds the optimizer but does not restore its state (Adam moments)",
    ),
    Mutation(
        name="history-not-restored",
        file="nn_handler/checkpoint/_restore.py",
        edits=(
            (
                "    if not skip_history:\n        state.load_history(ckpt)\n",
                "    if not skip_history:\n        pass\n",
            ),
        ),
        tests=(f"{_RESUME}::test_train_save_load_train_equals_one_run",),
        bug="load drops the history, so epoch numbers restart at 1",
    ),
    Mutation(
        name="continue-flag",
        file="adapters/fit/trainer_factory.py",
        edits=(("        trainer.fit_loop._resuming_from_checkpoint = True", "        pass"),),
        tests=(
            "tests/test_core_parity.py::"
            "test_train_in_two_calls_equals_one_call_with_shuffling_and_dropout",
        ),
        bug="a second `train()` draws one more seed from the global generator than one long run",
    ),
    Mutation(
        name="amp-cpu-bf16",
        file="adapters/fit/trainer_factory.py",
        edits=(
            (
                "        else:\n            warnings.warn(\n",
                '        else:\n            precision = "bf16-mixed"\n            warnings.warn(\n',
            ),
        ),
        tests=("tests/test_core_train.py::test_use_amp_on_cpu_warns_and_trains_in_fp32",),
        bug="`use_amp=True` on the CPU warns but silently trains in bf16 autocast",
    ),
    # ------------------------------------------------------------------------------- EMA
    Mutation(
        name="ema-decay",
        file="nn_handler/_ops/ema.py",
        edits=(("        self.decay = float(decay)", "        self.decay = 1.0 - float(decay)"),),
        tests=(f"{_EMA}::test_ema_equals_a_hand_computation_from_the_initial_weights",),
        bug="the EMA uses `1 - decay` in place of `decay`",
    ),
    Mutation(
        name="ema-no-warmup",
        file="nn_handler/_ops/ema.py",
        edits=(
            ("        return min(self.decay, (1.0 + n) / (10.0 + n))", "        return self.decay"),
        ),
        tests=(f"{_EMA}::test_ema_equals_a_hand_computation_from_the_initial_weights",),
        bug="the EMA decay has no warm-up (`min(decay, (1 + n) / (10 + n))`)",
    ),
    Mutation(
        name="ema-starts-after-first-step",
        file="nn_handler/_ops/ema.py",
        edits=(
            (
                "        weight = 1.0 - self.decay_at(self._updates)",
                "        weight = 1.0 if self._updates == 1 else "
                "1.0 - self.decay_at(self._updates)",
            ),
        ),
        tests=(f"{_EMA}::test_ema_equals_a_hand_computation_from_the_initial_weights",),
        bug="the average starts from the weights after the first step, not the initial ones",
    ),
    Mutation(
        name="ema-buffers-not-copied",
        file="nn_handler/_ops/ema.py",
        edits=(
            (
                "model.buffers(), strict=True):\n            avg.copy_(live)",
                "model.buffers(), strict=True):\n            pass",
            ),
        ),
        tests=(f"{_EMA}::test_ema_equals_a_hand_computation_from_the_initial_weights",),
        bug="the averaged copy keeps the BatchNorm statistics it was created with",
    ),
    Mutation(
        name="ema-count-not-restored",
        file="nn_handler/_ops/ema.py",
        edits=(("        self._updates = int(self.n_averaged)", "        self._updates = 0"),),
        tests=(f"{_EMA}::test_ema_resumes_exactly_after_save_and_load",),
        bug="a loaded EMA restarts its warm-up instead of continuing the update count",
    ),
    Mutation(
        name="ema-not-updated",
        file="adapters/steps/module.py",
        edits=(("            self.ema.update_parameters(self.model)", "            pass"),),
        tests=(f"{_EMA}::test_ema_equals_a_hand_computation_from_the_initial_weights",),
        bug="the optimizer step does not update the EMA",
    ),
    Mutation(
        name="predict-ignores-ema",
        file="nn_handler/_ops/inference.py",
        edits=(("        return state.ema.module", "        return runtime.model"),),
        tests=(f"{_EMA}::test_predict_with_ema_uses_the_averaged_weights",),
        bug="`predict(apply_ema=True)` uses the raw weights",
    ),
    # -------------------------------------------------------------------- callback bridge
    Mutation(
        name="bridge-epoch-1-based",
        file="adapters/hooks/callback_bridge.py",
        edits=(
            (
                '"on_epoch_end", trainer.current_epoch, pl_module.epoch_logs)',
                '"on_epoch_end", trainer.current_epoch + 1, pl_module.epoch_logs)',
            ),
        ),
        tests=(f"{_CALLBACKS}::test_hook_order_and_logs_validation_every_epoch",),
        bug="`on_epoch_end` gets the 1-based epoch instead of the 0-based one",
    ),
    Mutation(
        name="bridge-start-epoch",
        file="adapters/hooks/callback_bridge.py",
        edits=(
            ("        self._start_epoch = trainer.current_epoch", "        self._start_epoch = 0"),
        ),
        tests=(f"{_CALLBACKS}::test_hook_order_and_logs_validation_every_epoch",),
        bug="`on_train_begin` reports start_epoch 0 in a continued run",
    ),
    Mutation(
        name="bridge-raises",
        file="adapters/hooks/callback_bridge.py",
        edits=(("                self._report(cb, hook, err)", "                raise"),),
        tests=(
            f"{_CALLBACKS}::test_raising_callback_is_reported_once_per_hook_and_training_goes_on",
        ),
        bug="a failing native callback stops training instead of being reported",
    ),
    Mutation(
        name="bridge-stop-flag",
        file="adapters/steps/module.py",
        edits=(("        if stop:\n            self.trainer.should_stop = True", "        pass"),),
        tests=(f"{_CALLBACKS}::test_stop_training_flag_stops_after_the_current_epoch",),
        bug="`handler._stop_training = True` set by a callback does not stop training",
    ),
    # -------------------------------------------------------------------- DDP aggregation
    Mutation(
        name="aggregate-max",
        file="nn_handler/utils/ddp.py",
        edits=(("op=dist.ReduceOp.SUM)", "op=dist.ReduceOp.MAX)"),),
        tests=(_TWO_RANKS,),
        bug="`aggregate_loss`/`aggregate_metrics` divide the maximum, not the sum, by the world",
    ),
    Mutation(
        name="epoch-values-max",
        file="adapters/steps/collectives.py",
        edits=(
            (
                "op=tdist.ReduceOp.SUM)\n        return tensor",
                "op=tdist.ReduceOp.MAX)\n        return tensor",
            ),
        ),
        tests=(_TWO_RANKS,),
        bug="the epoch loss and metrics are reduced over ranks with max instead of sum",
    ),
    Mutation(
        name="epoch-loss-unweighted",
        file="adapters/steps/epoch_stats.py",
        edits=(
            (
                "self._loss_sum.add_(loss.detach(), alpha=n)",
                "self._loss_sum.add_(loss.detach(), alpha=1)",
            ),
            ("        self._count += n", "        self._count += 1"),
        ),
        tests=("tests/test_core_parity.py::test_epoch_loss_is_sample_weighted",),
        bug="the epoch loss is the mean of batch losses, not weighted by batch size",
    ),
    Mutation(
        name="on-rank-local-failure",
        file="nn_handler/utils/ddp.py",
        edits=(
            (
                "failed = [(r, msg) for r, msg in enumerate(reports) if msg is not None]",
                "failed = [(rank, failure)] if failure else []",
            ),
        ),
        tests=(_TWO_RANKS,),
        bug="`on_rank`: a failure on one rank is raised there only; the others carry on",
    ),
    Mutation(
        name="broadcast-from-rank-0",
        file="nn_handler/utils/ddp.py",
        edits=(
            ("dist.broadcast_object_list(box, src=src,", "dist.broadcast_object_list(box, src=0,"),
        ),
        tests=(_TWO_RANKS,),
        bug="`broadcast_data(src=1)` sends rank 0's data",
    ),
    Mutation(
        name="gather-rank-order",
        file="nn_handler/utils/_ordered_gather.py",
        edits=(
            (
                "merged = _take(_cat(chunks), torch.argsort(positions))",
                "merged = _cat(chunks)",
            ),
        ),
        tests=(_TWO_RANKS,),
        bug="`predict` under DDP returns outputs rank by rank instead of in dataset order",
    ),
    # ----------------------------------------------------------------------- generative
    Mutation(
        name="sample-returns-prior",
        file="nn_handler/generative/sampling.py",
        edits=(
            (
                "    x = prior_sample(sde, tuple(shape), device)\n",
                "    return prior_sample(sde, tuple(shape), device)\n",
            ),
        ),
        tests=(
            "tests/test_generative.py::test_sample_with_exact_score_matches_the_data_distribution",
            "tests/test_generative_examples.py",
        ),
        bug="`sample` returns the prior draw without integrating the reverse SDE",
    ),
    Mutation(
        name="patch-overlap-summed",
        file="nn_handler/generative/patches.py",
        edits=(("    return summed / coverage\n", "    return summed\n"),),
        tests=(
            "tests/test_generative_patches.py"
            "::test_patch_score_averages_the_patches_and_places_their_grids",
        ),
        bug="patch-based sampling sums the overlapping patches' scores instead of averaging",
    ),
    # --------------------------------------------- spawn/fork workers (adapters/fit/launchers.py)
    Mutation(
        name="worker-optimizer-lost",
        file="adapters/fit/launchers.py",
        edits=(
            (
                '            self.runtime.optimizer.load_state_dict(results["optimizer"])',
                "            pass",
            ),
        ),
        tests=(f"{_LAUNCHER_PARTS}::test_worker_results_land_in_the_main_processs_objects",),
        bug="the optimizer state of a spawned/forked run stays in the worker",
    ),
    Mutation(
        name="worker-callbacks-lost",
        file="adapters/fit/launchers.py",
        edits=(("            callback.load_state_dict(callback_state)", "            pass"),),
        tests=(f"{_LAUNCHER_PARTS}::test_worker_results_land_in_the_main_processs_objects",),
        bug="callbacks' state of a spawned/forked run stays in the worker",
    ),
    Mutation(
        name="worker-step-counter",
        file="adapters/fit/launchers.py",
        edits=(
            (
                "        continue_from(trainer, self.state.epochs_done, self.state.global_step)",
                "        pass",
            ),
        ),
        tests=(f"{_LAUNCHER_PARTS}::test_worker_results_land_in_the_main_processs_objects",),
        bug="after a spawned/forked run the calling Trainer's step counter (which train() "
        "records) stays at its start",
    ),
    Mutation(
        name="worker-place",
        file="adapters/hooks/process_place.py",
        edits=(("        runtime.dist = DistEnv(", "        DistEnv("),),
        tests=(
            f"{_LAUNCHER_PARTS}::test_process_place_gives_the_facade_its_rank_and_quiets_other_ranks",
        ),
        bug="in a process Lightning started, handler._rank/_world_size stay those of one process",
    ),
    # ------------------------- manual optimization, chunked steps (manual_steps, chunked_module)
    Mutation(
        name="accumulation-undivided",
        file="adapters/steps/manual_steps.py",
        edits=(("                    loss = loss / accumulate", "                    pass"),),
        tests=(f"{_CHUNKED}::test_manual_optimization_equals_lightnings_automatic",),
        bug="with gradient accumulation the loss is not divided by the number of batches",
    ),
    Mutation(
        name="backward-under-autocast",
        file="adapters/steps/manual_steps.py",
        edits=(
            (
                "torch.autocast(plugin.device, enabled=False) if mixed else _NULL",
                "_NULL",
            ),
        ),
        tests=(f"{_CHUNKED}::test_amp_with_a_grad_scaler_equals_automatic_on_cpu",),
        bug="with mixed precision, backward and the step run inside the autocast region",
    ),
    Mutation(
        name="step-hooks-skipped",
        file="adapters/steps/manual_steps.py",
        edits=(
            (
                "        self.direct = can_step_directly(trainer)",
                "        self.direct = True",
            ),
        ),
        tests=(f"{_CHUNKED}::test_lightning_step_hooks_run_per_batch_and_per_step",),
        bug="Lightning callbacks' backward and optimizer-step hooks are never called",
    ),
    Mutation(
        name="ddp-accumulation-syncs-every-batch",
        file="adapters/steps/manual_steps.py",
        edits=(("                if step or self._ddp is None:", "                if True:"),),
        tests=(f"{_DDP_CHUNKED}::test_one_process_ddp_reduces_once_per_optimizer_step",),
        bug="under DDP every micro-batch of an accumulation window all-reduces its gradients",
    ),
    Mutation(
        name="ddp-direct-backward-unprepared",
        file="adapters/steps/manual_steps.py",
        edits=(("            prepare_for_backward(self._ddp, loss)", "            pass"),),
        tests=(f"{_DDP_CHUNKED}::test_one_process_ddp_reduces_once_per_optimizer_step",),
        bug="under DDP the direct backward does not prepare the reducer: no gradient all-reduce",
    ),
    Mutation(
        name="ddp-auto-ignores-find-unused",
        file="adapters/steps/steps_per_execution.py",
        edits=(
            (
                '_UNPROVEN_DDP_OPTIONS = ("find_unused_parameters", "static_graph")',
                '_UNPROVEN_DDP_OPTIONS = ("static_graph",)',
            ),
        ),
        tests=(f"{_DDP_CHUNKED}::test_auto_keeps_one_batch_where_not_covered_and_logs_why",),
        bug='"auto" runs chunks under DDP with find_unused_parameters, which no test covers',
    ),
    Mutation(
        name="chunk-batches-uncounted",
        file="adapters/steps/chunked_module.py",
        edits=(
            (
                "the others count here.\n                progress.increment_by(1)",
                "the others count here.\n                pass",
            ),
        ),
        tests=(f"{_CHUNKED}::test_an_auto_save_at_sixteen_resumes_a_lightning_fit",),
        bug="Lightning counts chunks, not batches: a checkpoint resumes in the wrong place",
    ),
    Mutation(
        name="chunk-logger-step",
        file="adapters/steps/chunked_module.py",
        edits=(
            (
                "loop._batches_that_stepped += steps.total.completed - before - step",
                "pass",
            ),
        ),
        tests=(f"{_CHUNKED}::test_one_logger_write_per_epoch_at_the_optimizer_step",),
        bug="loggers get the epoch values at the chunk count instead of the optimizer step",
    ),
    Mutation(
        name="chunk-ignores-stop",
        file="adapters/steps/chunked_module.py",
        edits=(
            (
                "or (trainer.should_stop and fit_loop._can_stop_early)",
                "or False",
            ),
        ),
        tests=(f"{_CHUNKED}::test_a_stop_inside_a_chunk_ends_the_epoch_after_that_batch",),
        bug="a stop requested inside a chunk ends the epoch only after the chunk",
    ),
    # ------------------------------------------------ destinations and deletions (issue 22)
    Mutation(
        name="write-check-skipped",
        file="nn_handler/_env/write_guard.py",
        edits=(
            (
                "    if roots is None:\n        return path",
                "    if True:\n        return path",
            ),
        ),
        tests=(
            "tests/test_checkpoint_destinations.py::"
            "test_row1_a_template_that_formats_to_an_absolute_path_writes_nothing_there",
        ),
        bug="a callback rebuilt from a file writes wherever its formatted path points",
    ),
    Mutation(
        name="delete-by-name",
        file="nn_handler/_state/run_state.py",
        edits=(
            (
                "        same_file = recorded is not None and file_identity(where) == recorded",
                "        same_file = True",
            ),
        ),
        tests=(
            "tests/test_autosaver.py::test_another_process_rewrite_of_the_previous_file_survives",
        ),
        bug="the AutoSaver deletes a previous auto-save by name: another process's rewrite too",
    ),
    # ------------------------------------------- checkpoint decoding (issue 22: a file is data)
    Mutation(
        name="plain-slot-decodes-markers",
        file="nn_handler/_codecs/fields.py",
        edits=(
            (
                "return self.from_plain(_refs.decode_plain(ckpt[self.key], self.key))",
                "return self.from_plain(_refs.decode(ckpt[self.key], self.key, ctx.trust))",
            ),
        ),
        tests=(
            f"{_EFFECTS}::test_a_refused_setting_says_what_it_holds",
            f"{_EFFECTS}::test_a_file_allocates_no_module_it_does_not_store",
        ),
        bug="a setting slot (`seed`) rebuilds a module marker before its kind is checked",
    ),
    Mutation(
        name="module-size-unchecked",
        file="nn_handler/_codecs/refs.py",
        edits=(("            _check_size(cls, kwargs, state, where)\n", "            pass\n"),),
        tests=(f"{_EFFECTS}::test_a_file_allocates_no_module_it_does_not_store",),
        bug="a module marker is built whatever memory its file-chosen arguments take",
    ),
    Mutation(
        name="import-rule-off",
        file="nn_handler/_codecs/paths.py",
        edits=(("    if not trust and not importable(module_name):", "    if False:"),),
        tests=(
            f"{_EFFECTS}::test_a_file_imports_no_module_the_script_did_not_import",
            f"{_EFFECTS}::test_the_refusal_says_which_import_object_or_flag",
        ),
        bug="a checkpoint imports any module it names (its top-level code runs)",
    ),
    Mutation(
        name="loss-partial-untrusted",
        file="nn_handler/_codecs/trust.py",
        edits=(("    if kwargs and not trust and not _known_loss(fn):", "    if False:"),),
        tests=(
            "tests/test_checkpoint_safety.py::"
            "test_a_file_chosen_loss_function_gets_no_file_chosen_arguments",
        ),
        bug="a file names a function and the arguments to call it with: the partial is rebuilt",
    ),
    Mutation(
        name="rebuilt-callback-unconfined",
        file="nn_handler/_codecs/trust.py",
        edits=(
            ("    callback.write_roots = roots_for_checkpoint(checkpoint_file)", "    pass"),
            (
                "            if refused:\n                raise Unresolvable(",
                "            if False:\n                raise Unresolvable(",
            ),
        ),
        tests=(
            "tests/test_checkpoint_destinations.py::"
            "test_row2_home_variables_and_symlinks_are_resolved_before_writing",
        ),
        bug="a callback rebuilt from a file writes where the file says (outside its folders)",
    ),
    Mutation(
        name="zip-inflation-unchecked",
        file="nn_handler/checkpoint/_scan.py",
        edits=(
            (
                "packed = [e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED]",
                "packed = []",
            ),
            ("if claimed > size or any(", "if False and any("),
        ),
        tests=(f"{_EFFECTS}::test_a_compressed_zip_is_refused_before_torch_load",),
        bug="a compressed zip is inflated by torch.load (a small file takes much memory)",
    ),
    Mutation(
        name="pickle-globals-unchecked",
        file="nn_handler/checkpoint/_scan.py",
        edits=(
            (
                "    if refused:\n        raise needs_code(",
                "    if False:\n        raise needs_code(",
            ),
        ),
        tests=(f"{_EFFECTS}::test_a_pickled_device_mesh_initialises_no_process_group",),
        bug="a global on torch's allow-list (DeviceMesh) is unpickled: torch.distributed starts",
    ),
    Mutation(
        name="decode-error-unnamed",
        file="nn_handler/checkpoint/_restore.py",
        edits=(
            (
                "    except Exception as err:  # noqa: BLE001 - every failure of decoding",
                "    except ArithmeticError as err:  # noqa: BLE001 - every failure of decoding",
            ),
        ),
        tests=(f"{_FUZZ}::test_the_deep_list_and_a_negative_dimension_name_their_key",),
        bug="a wrong-typed entry raises TypeError/RecursionError without the file and key",
    ),
    Mutation(
        name="multi-file-follows-links",
        file="nn_handler/checkpoint/_multi.py",
        edits=(
            ("    _inside(directory, os.path.join(directory, MANIFEST))\n", ""),
            ("        if os.path.lexists(path):\n            _inside(directory, path)\n", ""),
        ),
        tests=(f"{_EFFECTS}::test_a_link_in_a_multi_file_checkpoint_is_refused",),
        bug="a multi-file checkpoint reads a linked file from outside its directory",
    ),
    Mutation(
        name="legacy-mark-from-file",
        file="nn_handler/checkpoint/_restore.py",
        edits=(("        obj.pop(LEGACY_MARK, None)\n", "        pass\n"),),
        tests=(f"{_EFFECTS}::test_a_file_cannot_mark_itself_as_an_opted_in_legacy_pickle",),
        bug="a file holding the legacy-pickle mark is trusted as if the user had opted in",
    ),
    # ------------------------------------------------- Lightning's checkpoints, mid-epoch
    Mutation(
        name="mid-epoch-plain-loader",
        file="adapters/fit/inputs.py",
        edits=(("        train = stateful_loader(setup.train_data, distributed)", "        pass"),),
        tests=(f"{_ECOSYSTEM}::test_a_mid_epoch_auto_save_resumes_to_the_same_weights",),
        bug="step auto-saves read a plain loader: a resume restarts the epoch's data",
    ),
    Mutation(
        name="mid-epoch-sums",
        file="adapters/steps/module.py",
        edits=(
            (
                "            self.train_stats.load_state_dict(resumed, self.device)",
                "            pass",
            ),
        ),
        tests=(f"{_ECOSYSTEM}::test_a_mid_epoch_auto_save_resumes_to_the_same_weights",),
        bug="a resumed epoch's loss covers only the batches after the resume",
    ),
    Mutation(
        name="lightning-ckpt-keys",
        file="adapters/steps/module.py",
        edits=(("        if self.checkpoint_keys is None:\n            return", "        return"),),
        tests=(
            f"{_ECOSYSTEM}::test_a_lightning_model_checkpoint_file_loads_and_continues_exactly",
        ),
        bug="a ModelCheckpoint's file in train() lacks the handler's keys: load refuses it",
    ),
    # ---------------------------- issue 27: an independent mutation run's survivors (round 2)
    Mutation(
        name="ema-skipped-step",
        file="adapters/steps/manual_steps.py",
        edits=(
            (
                "        module.after_optimizer_step()\n",
                "        if not skipped:\n            module.after_optimizer_step()\n",
            ),
        ),
        tests=(f"{_EMA}::test_a_skipped_non_finite_step_still_updates_the_ema",),
        bug="after a skipped non-finite step the EMA is not updated (n_averaged < global_step)",
    ),
    Mutation(
        name="chunk-val-count",
        file="adapters/steps/chunked_module.py",
        edits=(
            (
                "            if n:\n                progress.increment_by(1)\n",
                "            progress.increment_by(1)\n",
            ),
        ),
        tests=(f"{_CHUNKED}::test_lightning_counts_every_validation_batch_once",),
        bug="chunked validation counts its first batch twice in Lightning's progress",
    ),
    Mutation(
        name="auto-ignores-step-checkpoint",
        file="adapters/steps/steps_per_execution.py",
        edits=(
            (
                "    if any(isinstance(c, ModelCheckpoint) and c._every_n_train_steps for c in "
                "trainer.callbacks):",
                "    if False:",
            ),
        ),
        tests=(f"{_CHUNKED}::test_step_based_model_checkpoints_land_every_n_steps",),
        bug="chunks run with ModelCheckpoint(every_n_train_steps=N): saves miss steps",
    ),
    Mutation(
        name="worker-global-step",
        file="adapters/fit/launchers.py",
        edits=(
            (
                "        self.state.record_global_step(trainer.global_step)  # as train() records",
                "        pass  #",
            ),
        ),
        tests=(f"{_LAUNCHER_PARTS}::test_the_step_count_comes_back_from_the_workers_trainer",),
        bug="after a spawned/forked run handler.global_step stays at the count before the fit",
    ),
    Mutation(
        name="overwrite-same-name",
        file="nn_handler/_state/run_state.py",
        edits=(
            (
                "        return inside and different and self.wrote(previous)",
                "        return inside and self.wrote(previous)",
            ),
        ),
        tests=(
            "tests/test_autosaver.py::test_overwrite_under_an_unchanged_name_keeps_the_new_file",
        ),
        bug="overwrite under an unchanged name deletes the file it has just written",
    ),
    Mutation(
        name="failed-save-bookkeeping",
        file="adapters/hooks/autosaver.py",
        edits=(
            (
                "            if not was_ours:\n                self.bookkeeping.forget(path)\n"
                "            self.bookkeeping.last_saved = previous\n",
                "",
            ),
        ),
        tests=(
            "tests/test_autosaver.py::test_a_failed_save_leaves_the_last_good_file_to_be_replaced",
        ),
        bug="after a failed save the next save deletes a file this process never wrote and "
        "keeps the one it should replace",
    ),
    Mutation(
        name="bridge-sanity-val-end",
        file="adapters/hooks/callback_bridge.py",
        edits=(
            (
                '        if not trainer.sanity_checking:\n            logs = {"epoch"',
                '        if True:\n            logs = {"epoch"',
            ),
        ),
        tests=(f"{_CALLBACKS}::test_lightnings_sanity_check_reaches_no_native_hook",),
        bug="native on_val_end also runs for Lightning's sanity check (num_sanity_val_steps)",
    ),
    Mutation(
        name="nested-kwargs-trusted",
        file="nn_handler/_codecs/refs.py",
        edits=(
            (
                'kwargs = decode_kwargs(value.get("kwargs"), f"{where}.kwargs", trust, '
                "plain=not trust)",
                'kwargs = decode_kwargs(value.get("kwargs"), f"{where}.kwargs", trust or not '
                "top_level, plain=trust and top_level)",
            ),
        ),
        tests=(
            "tests/test_checkpoint_safety.py::"
            "test_a_partial_inside_a_nested_modules_arguments_needs_trust",
        ),
        bug="a nested module's arguments are decoded as if the file were trusted",
    ),
    Mutation(
        name="rng-numpy-gauss",
        file="nn_handler/checkpoint/_rng.py",
        edits=(('"has_gauss": npst["has_gauss"],', '"has_gauss": 0,'),),
        tests=(f"{_RESUME}::test_load_restores_numpys_cached_normal_draw",),
        bug="load drops NumPy's cached Box–Muller value: np.random.normal differs after a resume",
    ),
    Mutation(
        name="callback-key-collision",
        file="nn_handler/_codecs/fields.py",
        edits=(("            while key in classes:", "            if key in classes:"),),
        tests=(
            "tests/test_checkpoint.py::test_three_callbacks_of_one_class_each_keep_their_state",
        ),
        bug="three callbacks of one class: two share a key in the file and one is lost on load",
    ),
    Mutation(
        name="sample-last-step-noise",
        file="nn_handler/generative/sampling.py",
        edits=(("        last = i == steps - 1", "        last = i == steps"),),
        tests=("tests/test_generative.py::test_the_last_step_adds_no_noise",),
        bug="`sample`'s last step adds noise: samples are not the denoised mean",
    ),
    # ------------------------------------------- collectives under DDP (issue 26, per-epoch cost)
    Mutation(
        name="sigterm-broadcast-per-step",
        file="adapters/fit/interrupts.py",
        edits=(
            (
                "                loop._broadcast_sigterm_tensor = _flag_never_set",
                "                pass",
            ),
        ),
        tests=(
            "tests/test_interrupts.py::"
            "test_lightnings_per_step_sigterm_broadcast_is_skipped_once_ours_handles_sigterm",
        ),
        bug="Lightning broadcasts its (never set) SIGTERM flag before every training step",
    ),
    Mutation(
        name="reduce-with-barrier",
        file="adapters/steps/collectives.py",
        edits=(
            (
                "    if _direct(strategy):\n        tdist.all_reduce(tensor",
                "    if False:\n        tdist.all_reduce(tensor",
            ),
        ),
        tests=(f"{_TWO_RANKS}::test_the_epoch_reductions_are_one_all_reduce_each",),
        bug="the epoch's values go through strategy.reduce: a barrier before the all-reduce",
    ),
    Mutation(
        name="fork-guard-not-installed",
        file="nn_handler/__init__.py",
        edits=(("\n_install_fork_guard()\n", "\n"),),
        tests=(_FORK_GUARD,),
        bug="importing nn_handler leaves forks unguarded: a worker forked after a collective hangs",
    ),
    Mutation(
        name="fork-guard-does-not-wait",
        file="nn_handler/_env/fork_guard.py",
        edits=(("    sys._current_frames()\n", "    pass\n"),),
        tests=(_FORK_GUARD,),
        bug="the before-fork hook returns without waiting for the thread-registry lock",
    ),
)


# ----------------------------------------------------------------- running
def apply_mutation(mutation: Mutation, root: Path) -> None:
    """Apply ``mutation`` to the tree at ``root`` (raises ``ValueError`` if its text is gone)."""
    path = root / mutation.file
    text = path.read_text()
    for original, mutated in mutation.edits:
        count = text.count(original)
        if count != 1:
            raise ValueError(
                f"{mutation.name}: the original text occurs {count} times in {mutation.file} "
                f"(expected once); update the entry in tests/mutation_check.py:\n{original}"
            )
        text = text.replace(original, mutated)
    path.write_text(text)


def _copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked + untracked, minus ignored files) into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if not src.is_file():  # deleted in the working tree but still in the index
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    # `adapters/` installs as `nn_handler.adapters`; a link makes the copy importable by that name
    # from PYTHONPATH alone, ahead of any installed (editable) nn_handler.
    # The link is relative, so a copy of this tree links to its own adapters/.
    (dest / "nn_handler" / "adapters").symlink_to("../adapters", target_is_directory=True)


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        env.pop(key, None)
    return env


def _check_imports_copy(root: Path) -> None:
    code = (
        "import nn_handler, nn_handler.adapters.steps.module as m; "
        "print(nn_handler.__file__); print(m.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=_env(root), capture_output=True, text=True
    )
    files = out.stdout.split()
    if out.returncode != 0 or not all(f.startswith(str(root)) for f in files) or len(files) != 2:
        raise SystemExit(
            "The copy's nn_handler is not the one Python imports there, so mutations would not be "
            f"seen:\n{out.stdout}{out.stderr}"
        )


def _pytest(
    root: Path, tests: list[str], timeout: float, trace: Path | None = None
) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow"]
    env = _env(root)
    if trace is not None:  # record which source files each test file runs (select_tests.py)
        cmd += ["-p", "select_tests"]
        env[TRACE_ENV] = str(trace)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(root / "tests")])
    try:
        done = subprocess.run(
            cmd + tests,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def _summary(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run(mutations: list[Mutation], all_fast: bool, timeout: float, verbose: bool) -> int:
    """Run ``mutations``; return the number not killed (survived or errors)."""
    with tempfile.TemporaryDirectory(prefix="nn_handler_mutation_") as tmp:
        base = Path(tmp) / "base"
        _copy_tree(base)
        _check_imports_copy(base)
        wanted = ["tests"] if all_fast else sorted({t for m in mutations for t in m.tests})
        trace_file = Path(tmp) / "trace.json"
        start = time.monotonic()
        code, out = _pytest(base, wanted, timeout, trace_file if all_fast else None)
        if code != 0:
            print(f"The tests fail without any mutation ({_summary(out)}):\n{out[-3000:]}")
            return len(mutations)
        print(f"baseline: {_summary(out)} ({time.monotonic() - start:.0f} s)")
        trace = json.loads(trace_file.read_text()) if all_fast else {}
        bad = 0
        for mutation in mutations:
            tree = Path(tmp) / mutation.name
            shutil.copytree(base, tree, symlinks=True)
            link = (tree / "nn_handler" / "adapters").resolve()
            assert link == (tree / "adapters").resolve(), f"{link} is outside {tree}"
            apply_mutation(mutation, tree)
            if all_fast:
                originals = [original for original, _ in mutation.edits]
                tests = select_test_files(mutation.file, trace, originals, root=base)
                print(f"{mutation.name}: {len(tests)} test files")
            else:
                tests = list(mutation.tests)
            start = time.monotonic()
            code, out = _pytest(tree, tests, timeout)
            verdict = {0: "SURVIVED", 1: "killed"}.get(code, f"ERROR (pytest exit {code})")
            bad += verdict != "killed"
            took = time.monotonic() - start
            print(f"{verdict:9} {mutation.name:28} {took:5.0f} s  {_summary(out)}")
            if verbose or verdict.startswith("ERROR"):
                print(out[-3000:])
            shutil.rmtree(tree)
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--all-fast",
        action="store_true",
        help="run each mutation against every non-slow test file that runs its file",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    parser.add_argument("-v", "--verbose", action="store_true", help="print pytest's output")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; known: {sorted(by_name)}")
    chosen = [by_name[n] for n in args.names] if args.names else list(MUTATIONS)
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.file}\n  {m.bug}\n  killed by: {', '.join(m.tests)}")
        return 0
    # A terminated check still kills its pytest run and removes its temporary copies.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bad = run(chosen, args.all_fast, args.timeout, args.verbose)
    print(f"{len(chosen) - bad} of {len(chosen)} mutations killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
