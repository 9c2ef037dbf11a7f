"""Reliability driver: kills, corruptions and long runs, each case in a forked child process.

Usage: ``python driver.py OUT_DIR MODE:COUNT [MODE:COUNT ...]`` writes ``OUT_DIR/<mode>.json``.

Modes (COUNT is the number of trials, cases or epochs):
  crash     seeded training with the AutoSaver (every epoch, overwrite), SIGKILLed at random
            moments and resumed with ``NNHandler.load(<dir>)`` until done; the final weights are
            compared with an uninterrupted run and every file seen in the directory is loaded.
  savekill  SIGKILL at a random offset inside ``NNHandler.save`` of a 33 MB checkpoint.
  corrupt   truncations and bit flips of a checkpoint, each loaded in a child under a timeout.
  diskfull  a save that hits a real write limit (RLIMIT_FSIZE: EFBIG) in a child.
  longrun   COUNT epochs with the AutoSaver every epoch: RSS and open file descriptors.

Every child is forked from this process after the imports and one warm-up fit, so a trial costs
milliseconds, not an interpreter start; a SIGKILL still ends the child at an arbitrary
instruction, exactly as it would end a separate job.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

import torch  # noqa: E402
from models import DropoutNet, TinyNet  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from nn_handler import NNHandler  # noqa: E402
from nn_handler.callbacks import Callback  # noqa: E402
from nn_handler.checkpoint._read import is_handler_checkpoint  # noqa: E402

torch.set_num_threads(1)  # one thread: deterministic, and nothing but this thread to fork
warnings.filterwarnings("ignore")

EPOCHS = 8
AUTO_NAME = "model_epoch{epoch:02d}"
FINAL_RE = re.compile(r"^model_epoch\d\d\.pth$")
TMP_RE = re.compile(r"^\.[^/]+\.pth\.[^/]+\.tmp$")


# ----------------------------------------------------------------- helpers
def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


DATA = _data()


def make_handler(model=DropoutNet, **kwargs) -> NNHandler:
    torch.manual_seed(0)
    h = NNHandler(model, **kwargs)
    h.set_optimizer(torch.optim.Adam, lr=1e-2)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.set_train_loader(DATA, batch_size=16, shuffle=True)
    return h


def fork(work) -> int:
    """Run ``work()`` in a forked child; exit 0 on success, 3 on an exception."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work()
        except BaseException:  # noqa: BLE001 - the child reports and exits, never returns
            traceback.print_exc()
            code = 3
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def reap(pid: int, timeout: float) -> tuple[str, int]:
    """Wait for ``pid``: ("exit", code), ("signal", n) or ("timeout", 9) after killing it."""
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", 9
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return "signal", os.WTERMSIG(status)
    return "exit", os.WEXITSTATUS(status)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------- crash
def _segment(directory: str) -> None:
    """One life of the job: resume from the directory if it holds a checkpoint, else start."""
    try:
        h = NNHandler.load(directory)
    except FileNotFoundError:
        h = make_handler()
        h.auto_save(1, save_path=directory, name=AUTO_NAME, overwrite=True)
        h.train(EPOCHS, seed=0, progress_bar=False)
        return
    h.set_train_loader(DATA, batch_size=16, shuffle=True)
    remaining = EPOCHS - len(h.train_losses)
    if remaining > 0:
        h.train(remaining, progress_bar=False)


class Observer:
    """Looks at the directory while a child writes into it: every final-named file must load."""

    def __init__(self, directory: str):
        self.directory = directory
        self.looks = self.loads = self.vanished = 0
        self.bad: list[str] = []

    def look(self) -> None:
        self.looks += 1
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            if TMP_RE.match(name):
                continue
            if not FINAL_RE.match(name):
                self.bad.append(f"unexpected file {name}")
                continue
            try:
                handle = open(os.path.join(self.directory, name), "rb")  # noqa: SIM115
            except FileNotFoundError:
                self.vanished += 1  # removed by the overwrite between listdir and open
                continue
            # An open file stays readable even if the overwrite unlinks it now.
            try:
                with handle:
                    obj = torch.load(handle, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001 - any failure is a finding
                self.bad.append(f"{name}: {type(err).__name__}: {err}")
                continue
            self.loads += 1
            if not is_handler_checkpoint(obj):
                self.bad.append(f"{name}: not a handler checkpoint")


def crash(out: Path, trials: int, rng: random.Random) -> dict:
    ref_dir = str(out / "crash_reference")
    started = time.monotonic()
    status = reap(fork(lambda: _segment(ref_dir)), 300)
    full_time = time.monotonic() - started
    assert status == ("exit", 0), status
    reference = NNHandler.load(ref_dir)
    ref_state = reference.module.state_dict()
    records = []
    for trial in range(trials):
        directory = str(out / f"crash_{trial}")
        observer = Observer(directory)
        kills_planned = rng.randint(1, 3)
        kills: list[dict] = []
        lives = 0
        while True:
            lives += 1
            assert lives < 20, "the job never finished"
            delay = rng.uniform(0.0, 0.9 * full_time) if len(kills) < kills_planned else None
            pid = fork(lambda d=directory: _segment(d))
            t0 = time.monotonic()
            status = None
            while True:
                observer.look()
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = ("exit", os.WEXITSTATUS(st)) if os.WIFEXITED(st) else ("signal", 0)
                    break
                if delay is not None and time.monotonic() - t0 >= delay:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                if time.monotonic() - t0 > 300:
                    os.kill(pid, signal.SIGKILL)
                    raise RuntimeError("a training segment hung")
                time.sleep(0.01)
            observer.look()
            if status is None:
                on_disk = (
                    sorted(n for n in os.listdir(directory) if FINAL_RE.match(n))
                    if (os.path.isdir(directory))
                    else []
                )
                kills.append({"at_s": round(delay, 3), "files_after": on_disk})
                continue
            assert status == ("exit", 0), status
            if not kills:  # finished before the planned kill: a trial must see one, start over
                shutil.rmtree(directory, ignore_errors=True)
                continue
            break
        final = NNHandler.load(directory)
        leftover = sorted(os.listdir(directory))
        for name in leftover:
            if FINAL_RE.match(name):
                NNHandler.load(os.path.join(directory, name))  # every file loads at the end too
        records.append(
            {
                "trial": trial,
                "kills": kills,
                "lives": lives,
                "equal_weights": same_weights(final.module.state_dict(), ref_state),
                "equal_history": final.train_losses == reference.train_losses,
                "epochs": len(final.train_losses),
                "final_files": [n for n in leftover if FINAL_RE.match(n)],
                "tmp_files": [n for n in leftover if TMP_RE.match(n)],
                "other_files": [n for n in leftover if not (FINAL_RE.match(n) or TMP_RE.match(n))],
                "looks": observer.looks,
                "loads": observer.loads,
                "vanished": observer.vanished,
                "bad": observer.bad,
            }
        )
    return {"full_run_s": round(full_time, 3), "epochs": EPOCHS, "trials": records}


# ---------------------------------------------------------------- savekill
class Big(nn.Module):
    """33 MB of weights: a save takes long enough for a kill to land inside it."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2048, 4096)


def _stamp(h: NNHandler, version: int) -> None:
    with torch.no_grad():
        for p in h.module.parameters():
            p.fill_(float(version))


def savekill(out: Path, trials: int, rng: random.Random) -> dict:
    directory = out / "savekill"
    directory.mkdir(parents=True, exist_ok=True)
    path = str(directory / "model.pth")
    h = NNHandler(Big)
    h.set_optimizer(torch.optim.SGD, lr=0.1)
    _stamp(h, 0)
    h.save(path)
    save_s = _child_save_seconds(h, path)
    on_disk = 0
    records = []
    for trial in range(1, trials + 1):
        offset = rng.uniform(0.0, save_s)
        read_end, write_end = os.pipe()

        def work(version=trial, w=write_end):
            _stamp(h, version)
            os.write(w, b"s")
            h.save(path)
            os.write(w, b"e")
            time.sleep(60)

        pid = fork(work)
        os.close(write_end)
        assert os.read(read_end, 1) == b"s"
        time.sleep(offset)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        finished = os.read(read_end, 1) == b"e"
        os.close(read_end)
        finals = sorted(n for n in os.listdir(directory) if not n.startswith("."))
        tmps = sorted(n for n in os.listdir(directory) if TMP_RE.match(n))
        loaded = NNHandler.load(path)
        values = {float(p.reshape(-1)[0]) for p in loaded.module.parameters()}
        uniform = all(bool((p == p.reshape(-1)[0]).all()) for p in loaded.module.parameters())
        version = int(values.pop()) if len(values) == 1 else None
        records.append(
            {
                "trial": trial,
                "offset_s": round(offset, 4),
                "save_returned": finished,
                "version_on_disk": version,
                "previous_version": on_disk,
                "consistent": uniform and version in (on_disk, trial),
                "final_named": finals,
                "tmp_left": len(tmps),
            }
        )
        if version is not None:
            on_disk = version
        for name in tmps:
            os.remove(directory / name)  # 33 MB each: keep the disk small between trials
    return {"save_s": round(save_s, 4), "file_bytes": os.path.getsize(path), "trials": records}


def _child_save_seconds(h: NNHandler, path: str, runs: int = 3) -> float:
    """Median duration of an unkilled save in a forked child, timed as the trials see it."""
    times = []
    for _ in range(runs):
        read_end, write_end = os.pipe()

        def work(w=write_end):
            os.write(w, b"s")
            h.save(path)
            os.write(w, b"e")

        pid = fork(work)
        os.close(write_end)
        assert os.read(read_end, 1) == b"s"
        t0 = time.monotonic()
        assert os.read(read_end, 1) == b"e"
        times.append(time.monotonic() - t0)
        os.close(read_end)
        reap(pid, 60)
    return sorted(times)[len(times) // 2]


# ----------------------------------------------------------------- corrupt
def corrupt(out: Path, cases: int, rng: random.Random) -> dict:
    directory = out / "corrupt"
    directory.mkdir(parents=True, exist_ok=True)
    good = directory / "good.pth"
    h = make_handler(TinyNet)
    h.train(2, seed=0, progress_bar=False)
    h.save(str(good))
    blob = good.read_bytes()
    targeted = _targeted_corruptions(blob, h.module.body[0].weight)
    records = []
    for case in range(len(targeted) + cases):
        data = bytearray(blob)
        if case < len(targeted):
            kind, at = targeted[case]
            data[at] ^= 0x80
            detail = {"at": at}
        elif case % 2 == 0:
            kind, at = "truncate", rng.randrange(0, len(blob))
            data = data[:at]
            detail = {"at": at}
        else:
            kind, flips = "bitflip", rng.randint(1, 8)
            spots = [(rng.randrange(0, len(blob)), rng.randrange(8)) for _ in range(flips)]
            for byte, bit in spots:
                data[byte] ^= 1 << bit
            detail = {"bits": spots}
        path = directory / f"case{case:03d}.pth"
        path.write_bytes(bytes(data))
        read_end, write_end = os.pipe()

        def work(p=str(path), w=write_end):
            try:
                loaded = NNHandler.load(p)
            except Exception as err:  # noqa: BLE001 - classified by the parent
                report = {
                    "outcome": "error",
                    "type": type(err).__name__,
                    # The documented checkpoint errors, subclasses included (NotOurs, NeedsCode).
                    "clear": isinstance(err, (ValueError, RuntimeError)),
                    "message": str(err),
                }
            else:
                same = same_weights(loaded.module.state_dict(), h.module.state_dict())
                report = {"outcome": "loaded", "weights_equal": same}
            os.write(w, json.dumps(report).encode())

        pid = fork(work)
        os.close(write_end)
        t0 = time.monotonic()
        how, code = reap(pid, 30)
        elapsed = time.monotonic() - t0
        raw = b""
        while chunk := os.read(read_end, 65536):
            raw += chunk
        os.close(read_end)
        report = json.loads(raw) if raw else {"outcome": how, "code": code}
        report.update(case=case, kind=kind, seconds=round(elapsed, 3), **detail)
        if report["outcome"] == "error":
            report["names_file"] = str(path) in report["message"]
        records.append(report)
        path.unlink()
    return {"file_bytes": len(blob), "cases": records}


def _targeted_corruptions(blob: bytes, weight: torch.Tensor) -> list[tuple[str, int]]:
    """Two flips every reader must catch: one inside the stored bytes of a weight tensor (only
    the zip CRC tells), one that makes a pickled key invalid UTF-8."""
    raw = weight.detach().contiguous().numpy().tobytes()
    payload = blob.index(raw) + len(raw) // 2
    key = blob.index(b"model_state_dict") + 3
    return [("payload", payload), ("utf8", key)]


# ---------------------------------------------------------------- diskfull
def diskfull(out: Path, _count: int, rng: random.Random) -> dict:
    import resource

    directory = out / "diskfull"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.pth"
    h = NNHandler(Big)
    h.set_optimizer(torch.optim.SGD, lr=0.1)
    _stamp(h, 1)
    h.save(str(path))
    read_end, write_end = os.pipe()

    def work(w=write_end):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a too-long write fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        _stamp(h, 2)
        try:
            h.save(str(path))
        except Exception as err:  # noqa: BLE001 - reported to the parent
            report = {
                "type": type(err).__name__,
                "is_oserror": isinstance(err, OSError),
                "errno": getattr(err, "errno", None),
                "message": str(err),
            }
        else:
            report = {"type": None}
        os.write(w, json.dumps(report).encode())

    how = reap(fork(work), 60)
    os.close(write_end)
    report = json.loads(os.read(read_end, 65536) or b"{}")
    os.close(read_end)
    loaded = NNHandler.load(str(path))
    report.update(
        child=list(how),
        names_path=str(path) in report.get("message", ""),
        previous_intact=all(bool((p == 1).all()) for p in loaded.module.parameters()),
        leftovers=sorted(n for n in os.listdir(directory) if n != "model.pth"),
    )
    return report


# ----------------------------------------------------------------- longrun
def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Meter(Callback):
    def __init__(self):
        super().__init__()
        self.rss: list[int] = []
        self.fds: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.rss.append(_rss_kb())
        self.fds.append(len(os.listdir("/proc/self/fd")))


def longrun(out: Path, epochs: int, rng: random.Random) -> dict:
    directory = str(out / "longrun")
    result_path = out / "longrun_child.json"

    def work():
        h = make_handler(TinyNet)
        meter = Meter()
        h.add_callback(meter)
        h.auto_save(1, save_path=directory, name=AUTO_NAME, overwrite=True)
        t0 = time.monotonic()
        h.train(epochs, seed=0, progress_bar=False)
        result_path.write_text(
            json.dumps({"rss_kb": meter.rss, "fds": meter.fds, "seconds": time.monotonic() - t0})
        )

    how = reap(fork(work), 1800)
    result = json.loads(result_path.read_text())
    warm = max(1, len(result["rss_kb"]) // 10)  # allocator pools settle in the first epochs
    base = result["rss_kb"][warm - 1]
    result.update(
        child=list(how),
        epochs=epochs,
        warmup_epochs=warm,
        rss_base_kb=base,
        rss_max_after_kb=max(result["rss_kb"][warm:]),
        rss_growth=max(result["rss_kb"][warm:]) / base - 1.0,
        fds_after_warmup=sorted(set(result["fds"][warm:])),
        files_left=sorted(os.listdir(directory)),
    )
    return result


MODES = {
    "crash": crash,
    "savekill": savekill,
    "corrupt": corrupt,
    "diskfull": diskfull,
    "longrun": longrun,
}


def main(argv: list[str]) -> None:
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seed = int(os.environ.get("NNH_RELIABILITY_SEED", "2026"))
    # Warm-up: the first fit imports the rest of Lightning; children inherit it.
    make_handler(TinyNet).train(1, seed=0, progress_bar=False)
    for spec in argv[1:]:
        mode, _, count = spec.partition(":")
        t0 = time.monotonic()
        result = MODES[mode](out, int(count or 1), random.Random(f"{seed}-{mode}"))
        result["wall_s"] = round(time.monotonic() - t0, 2)
        result["seed"] = seed
        (out / f"{mode}.json").write_text(json.dumps(result, indent=1))
        print(f"{mode}: done in {result['wall_s']} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
